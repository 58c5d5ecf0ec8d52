"""Short, fixed-size identities, so Redis can tell a repeated message or batch from a new one.

A message's fingerprint follows the framework's own rule for recognising a message it
already stored (``filter_new_messages``): the message id when there is one, else the role
and the contents. The first letter says which, because the rule treats a user message
without an id specially (typing "yes" twice is two messages):

* ``i``: from the message id;
* ``u``: a user message without an id, from its contents;
* ``c``: any other message without an id, from its role and contents.

The rest is 8 bytes of a BLAKE2b digest, so a fingerprint is exactly
``lua.FINGERPRINT_WIDTH`` bytes (earlier versions wrote the same digest as 16 hex digits;
the script still reads those). A store with ``encryption=`` keys the digest (a MAC), so the
fingerprints in Redis reveal nothing about the encrypted bodies.

A batch's idempotency key, whatever its length (a caller's, a run's, a random one), is
recorded as 8 bytes of its digest (``batch_member``): the thread's set of recent batches
stays small and a listpack.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any

from .lua import FINGERPRINT_WIDTH

__all__ = ["batch_member", "batch_token", "fingerprint"]

_DIGEST_BYTES = FINGERPRINT_WIDTH - 1
# 64 bits: a new batch is taken for one of the lua.BATCH_TOKENS_KEPT (64) a thread keeps
# with a probability of 64 / 2**64, about once in 3 * 10**17 batches.
_BATCH_MEMBER_BYTES = 8


def fingerprint(data: dict[str, Any], *, key: bytes = b"") -> bytes:
    """The fingerprint of a message from its ``to_dict()`` (keyed by ``key``)."""
    message_id = data.get("message_id")
    if message_id is not None:
        return b"i" + _digest(str(message_id), key)
    role = data.get("role")
    role = str(role.get("value") if isinstance(role, dict) else role)
    contents = json.dumps(data.get("contents", []), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return (b"u" if role == "user" else b"c") + _digest(f"{role}\n{contents}", key)


def _digest(text: str, key: bytes) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=_DIGEST_BYTES, key=key).digest()


def batch_member(token: str) -> bytes:
    """What a thread's set of recent batches records for the idempotency key ``token``."""
    return hashlib.blake2b(
        token.encode("utf-8", "surrogatepass"), digest_size=_BATCH_MEMBER_BYTES, person=b"batch"
    ).digest()


def batch_token(messages: Sequence[Any]) -> str:
    """The idempotency key of a batch: from its message ids when every message has one.

    So an application that re-sends a batch after an error (the same messages, the same
    ids) does not store it twice; otherwise a random key still covers redis-py's retries.
    """
    ids = [i for message in messages if isinstance(i := getattr(message, "message_id", None), str) and i]
    if ids and len(ids) == len(messages):
        return "ids:" + "\x1f".join(ids)
    return os.urandom(8).hex()
