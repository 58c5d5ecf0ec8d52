"""A short, fixed-width identity per message, so Redis can tell a repeated message from a new one.

It follows the framework's own rule for recognising a message it already stored
(``filter_new_messages``): the message id when there is one, else the role and the
contents. The first letter says which, because the rule treats a user message without an
id specially (typing "yes" twice is two messages):

* ``i``: from the message id;
* ``u``: a user message without an id, from its contents;
* ``c``: any other message without an id, from its role and contents.

The rest is 16 hex digits of a BLAKE2b digest, so a fingerprint is exactly
``lua.FINGERPRINT_WIDTH`` characters. A store with ``encryption=`` keys the digest (a MAC),
so the fingerprints in Redis reveal nothing about the encrypted bodies.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any

from .lua import FINGERPRINT_WIDTH

__all__ = ["batch_token", "fingerprint"]

_DIGEST_BYTES = (FINGERPRINT_WIDTH - 1) // 2


def fingerprint(data: dict[str, Any], *, key: bytes = b"") -> str:
    """The fingerprint of a message from its ``to_dict()`` (keyed by ``key``)."""
    message_id = data.get("message_id")
    if message_id is not None:
        return "i" + _digest(str(message_id), key)
    role = data.get("role")
    role = str(role.get("value") if isinstance(role, dict) else role)
    contents = json.dumps(data.get("contents", []), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return ("u" if role == "user" else "c") + _digest(f"{role}\n{contents}", key)


def _digest(text: str, key: bytes) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=_DIGEST_BYTES, key=key).hexdigest()


def batch_token(messages: Sequence[Any]) -> str:
    """The idempotency key of a batch: from its message ids when every message has one.

    So an application that re-sends a batch after an error (the same messages, the same
    ids) does not store it twice; otherwise a random key still covers redis-py's retries.
    """
    ids = [i for message in messages if isinstance(i := getattr(message, "message_id", None), str) and i]
    if ids and len(ids) == len(messages):
        digest = hashlib.blake2b("\x1f".join(ids).encode("utf-8", "surrogatepass"), digest_size=16)
        return "ids:" + digest.hexdigest()
    return os.urandom(16).hex()
