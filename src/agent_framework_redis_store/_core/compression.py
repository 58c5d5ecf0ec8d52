"""Compression of large message bodies (``compression="zlib"``).

A compressed entry is text: ``~zlib:`` and the base64 of the zlib stream (with its checksum)
of the message's JSON. The ``~`` tells it apart from JSON (``{``) and from a sealed entry
(``<scheme>:<key id>:``), so any client reads it, whichever ``decode_responses`` it uses, and
every reader knows it without configuration. With encryption a body is compressed first and
then sealed (ciphertext does not compress). Only bodies of at least ``MIN_COMPRESSED_BYTES``
are compressed, and only when that makes them smaller: short chat messages stay plain JSON.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Literal

__all__ = [
    "COMPRESSED_PREFIX",
    "MIN_COMPRESSED_BYTES",
    "Compression",
    "compress",
    "decompress",
    "is_compressed",
    "validate_compression",
]

Compression = Literal["zlib"]

COMPRESSED_PREFIX = "~zlib:"
_PREFIX_BYTES = COMPRESSED_PREFIX.encode()
# Below this many bytes of JSON, zlib and base64 together save little or nothing (measured by
# benchmarks/memory.py: about 0.8x at 512 bytes of English, 0.64x at 3 KB).
MIN_COMPRESSED_BYTES = 512
_LEVEL = 6
# No stored entry decompresses to more: a Redis string holds at most 512 MB.
_MAX_BYTES = 512 * 1024 * 1024


def validate_compression(value: object, name: str = "compression") -> Compression | None:
    """``value`` if it is None or ``"zlib"``, else raise naming ``name``."""
    if value is None:
        return None
    if value == "zlib":
        return "zlib"
    if not isinstance(value, str):
        raise TypeError(f"{name} must be 'zlib' or None, got {type(value).__name__}")
    raise ValueError(f"{name} must be 'zlib' or None, got {value!r}")


def compress(text: str) -> str:
    """The stored form of a message's JSON: compressed if that makes it smaller, else ``text``."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) < MIN_COMPRESSED_BYTES:
        return text
    packed = COMPRESSED_PREFIX + base64.b64encode(zlib.compress(data, _LEVEL)).decode("ascii")
    return packed if len(packed) < len(data) else text


def is_compressed(entry: bytes | str) -> bool:
    """True for an entry ``compress`` compressed (after decryption, if it was sealed)."""
    if isinstance(entry, bytes):
        return entry.startswith(_PREFIX_BYTES)
    return entry.startswith(COMPRESSED_PREFIX)


def decompress(entry: bytes | str) -> str:
    """The JSON of a compressed entry; ``ValueError`` saying why when it is damaged."""
    body = entry[len(COMPRESSED_PREFIX) :]
    try:
        packed = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("its compressed body is not valid base64: the entry was altered") from None
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(packed, _MAX_BYTES)
    except zlib.error as err:
        raise ValueError(f"its compressed body does not decompress ({err})") from None
    if not inflater.eof:
        raise ValueError("its compressed body is truncated" if not inflater.unconsumed_tail else "it is too large")
    if inflater.unused_data:
        raise ValueError("its compressed body has trailing data: the entry was altered")
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as err:
        raise ValueError(f"its decompressed body is not UTF-8 ({err})") from None
