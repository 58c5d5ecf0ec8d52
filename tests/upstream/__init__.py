"""What Microsoft's own Redis stores write, recorded byte for byte (see ``record.py``)."""
