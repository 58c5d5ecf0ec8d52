"""A short, fixed-width identity per message, so Redis can tell a repeated message from a new one.

It follows the framework's own rule for recognising a message it already stored
(``filter_new_messages``): the message id when there is one, else the role and the
contents. The first letter says which, because the rule treats a user message without an
id specially (typing "yes" twice is two messages):

* ``i``: from the message id;
* ``u``: a user message without an id, from its contents;
* ``c``: any other message without an id, from its role and contents.

The rest is 16 hex digits of a BLAKE2b digest, so a fingerprint is exactly
``lua.FINGERPRINT_WIDTH`` characters.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .lua import FINGERPRINT_WIDTH

__all__ = ["message_fingerprint"]

_DIGEST_BYTES = (FINGERPRINT_WIDTH - 1) // 2


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=_DIGEST_BYTES).hexdigest()


def _role_of(message: Any) -> str:
    role = message.role
    return str(getattr(role, "value", role))


def message_fingerprint(message: Any) -> str:
    """The fingerprint of one framework message (see the module docstring)."""
    message_id = getattr(message, "message_id", None)
    if message_id is not None:
        return "i" + _digest(str(message_id))
    role = _role_of(message)
    contents = json.dumps([content.to_dict() for content in message.contents or []], sort_keys=True, ensure_ascii=False)
    return ("u" if role == "user" else "c") + _digest(f"{role}\n{contents}")
