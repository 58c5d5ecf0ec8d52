"""Encryption at rest: message bodies stored in Redis only as ciphertext.

A sealed entry is text of the form ``<scheme>:<key id>:<data>``, so an operator (and
``rekey``) sees which key wrote an entry without decrypting it, and a plaintext entry (a
JSON object, always starting with ``{``) is never mistaken for one. Only bodies are
encrypted: thread ids, counts, TTLs and the key layout stay readable.

``AESGCMEncryption`` is the built-in scheme; anything satisfying ``MessageEncryption``
plugs in the same way. Keys never appear in ``repr``, errors or serialized state: pass
``encryption=`` again when a store is restored, like the connection settings.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, NoReturn, Protocol, runtime_checkable

from .compression import is_compressed
from .errors import DecryptionError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "KEYS_ENV_VAR",
    "AESGCMEncryption",
    "MessageEncryption",
    "decrypt_entry",
    "key_id_of",
    "parse_keys",
    "validate_encryption",
]

KEYS_ENV_VAR = "REDIS_CHAT_STORE_KEYS"

_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_ENVELOPE = re.compile(r"([a-z][a-z0-9]*):([A-Za-z0-9_.-]{1,64}):")
_KEY_SIZES = (16, 24, 32)
_NONCE_BYTES = 12  # 96 bits: the size GCM is specified for; random per entry
_TAG_BYTES = 16


@runtime_checkable
class MessageEncryption(Protocol):
    """How one stored entry is sealed and opened.

    ``encrypt`` returns ``<scheme>:<key id>:<data>`` (scheme: lowercase letters and digits;
    key id: letters, digits, ``_.-``). ``context`` is the thread's Redis key: a scheme must
    bind the ciphertext to it, so that an entry copied into another thread does not open.
    ``decrypt`` raises ``ValueError`` with a reason (never key material or message text).
    """

    @property
    def key_id(self) -> str:
        """The id of the key new entries are sealed with."""
        ...

    @property
    def digest_key(self) -> bytes:
        """A secret (never the encryption key itself) that keys the fingerprints the store
        keeps to recognise repeated messages, so they reveal nothing about the bodies."""
        ...

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """Seal one message's JSON for the thread ``context``."""
        ...

    def decrypt(self, sealed: str, *, context: str) -> str:
        """Open one sealed entry of the thread ``context``; ``ValueError`` if it cannot."""
        ...


class AESGCMEncryption:
    """AES-GCM (``cryptography``) with a fresh random 96-bit nonce per entry.

    Args:
        keys: Key id -> 16, 24 or 32 random bytes (AES-128/192/256). Keep retired keys
            here until ``rekey`` has re-encrypted what they wrote.

    Keyword Args:
        current: The id of the key new entries are encrypted with.

    Entries are ``aesgcm1:<key id>:<base64 of nonce, ciphertext and tag>``. The associated
    data binds each entry to its scheme, key id and thread key: an altered entry, or one
    copied into another thread or prefix, fails to decrypt instead of reading as garbage.
    Random nonces are safe for about 2**32 entries per key: rotate long before that.
    """

    scheme = "aesgcm1"
    #: The environment variable ``from_env`` reads by default.
    ENV_VAR = KEYS_ENV_VAR

    def __init__(self, keys: Mapping[str, bytes], *, current: str) -> None:
        try:
            from cryptography.exceptions import InvalidTag
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError as err:  # pragma: no cover - depends on the installation
            raise ImportError(
                "AESGCMEncryption needs the 'cryptography' package: "
                "pip install 'agent-framework-redis-store[encryption]'"
            ) from err
        if not isinstance(keys, Mapping):
            raise TypeError(f"keys must be a mapping of key id to key bytes, got {type(keys).__name__}")
        if not keys:
            raise ValueError("keys must hold at least one key")
        self._ciphers: dict[str, AESGCM] = {}
        for key_id, key in keys.items():
            if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
                raise ValueError(f"keys: every key id must be 1-64 letters, digits, '_', '.' or '-', got {key_id!r}")
            if not isinstance(key, bytes):
                hint = " (decode it first, e.g. with parse_keys)" if isinstance(key, str) else ""
                raise TypeError(f"keys[{key_id!r}] must be bytes, got {type(key).__name__}{hint}")
            if len(key) not in _KEY_SIZES:
                raise ValueError(f"keys[{key_id!r}] must be 16, 24 or 32 bytes long, got {len(key)} bytes")
            self._ciphers[key_id] = AESGCM(key)
        self._invalid_tag: type[Exception] = InvalidTag
        if not isinstance(current, str) or current not in self._ciphers:
            known = ", ".join(self._ciphers)
            raise ValueError(f"current must be one of the key ids in keys ({known}), got {current!r}")
        self._current = current
        # Derived from the current key, so a rotation also rotates the fingerprints' key; the
        # others' still recognise fingerprints stored before it (rewritten on their next match).
        self._digest_key = _digest_key(keys[current])
        self._retired_digest_keys = tuple(_digest_key(key) for key_id, key in keys.items() if key_id != current)

    @classmethod
    def from_env(cls, var: str = KEYS_ENV_VAR, *, current: str | None = None) -> AESGCMEncryption:
        """Keys from the environment variable ``var`` (``"k2:<base64>,k1:<base64>"``).

        ``current`` defaults to the first key id listed.
        """
        keys = parse_keys(os.environ.get(var, ""), source=var)
        return cls(keys, current=current if current is not None else next(iter(keys)))

    @property
    def key_id(self) -> str:
        """The id of the key new entries are encrypted with."""
        return self._current

    @property
    def digest_key(self) -> bytes:
        """Keys the repeat-detection fingerprints (derived from the current key; never shown)."""
        return self._digest_key

    @property
    def retired_digest_keys(self) -> tuple[bytes, ...]:
        """The digest keys of the other keys: fingerprints stored before a rotation still match."""
        return self._retired_digest_keys

    @property
    def key_ids(self) -> list[str]:
        """Every key id this instance can decrypt."""
        return list(self._ciphers)

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """Encrypt one message's JSON with the current key, bound to the thread key ``context``."""
        header = f"{self.scheme}:{self._current}:"
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[self._current].encrypt(nonce, plaintext.encode("utf-8"), (header + context).encode())
        return header + base64.b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, sealed: str, *, context: str) -> str:
        """Decrypt one entry of the thread ``context``; ``ValueError`` saying why it cannot."""
        envelope = _ENVELOPE.match(sealed)
        if envelope is None or envelope.group(1) != self.scheme:
            raise ValueError(f"it is not an {self.scheme} entry")
        key_id = envelope.group(2)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise ValueError(
                f"it was encrypted with key id {key_id!r}, which is not among the keys given "
                f"({', '.join(self._ciphers)}); add that key to keys="
            )
        try:
            blob = base64.b64decode(sealed[envelope.end() :], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"its ciphertext (key id {key_id!r}) is not valid base64: the entry was altered") from None
        if len(blob) < _NONCE_BYTES + _TAG_BYTES:
            raise ValueError(f"its ciphertext (key id {key_id!r}) is truncated")
        aad = (sealed[: envelope.end()] + context).encode()
        try:
            plaintext = cipher.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], aad)
        except self._invalid_tag:
            raise ValueError(
                f"authentication with key id {key_id!r} failed: the entry was altered, "
                "or it was copied from another thread or key prefix"
            ) from None
        return plaintext.decode("utf-8")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(current={self._current!r}, key_ids={self.key_ids!r})"

    def __reduce__(self) -> NoReturn:
        # Pickling would write the keys wherever the state goes.
        raise TypeError(f"{type(self).__name__} holds keys and is never serialized; pass it again as encryption=")


def parse_keys(text: str, *, source: str = KEYS_ENV_VAR) -> dict[str, bytes]:
    """Keys from ``"k2:<base64>,k1:<base64>"``; errors name ``source`` and the key id, never a key."""
    keys: dict[str, bytes] = {}
    for position, item in enumerate(part.strip() for part in text.split(",")):
        if not item:
            continue
        key_id, sep, encoded = item.partition(":")
        key_id = key_id.strip()
        if not sep or not _KEY_ID.fullmatch(key_id):
            raise ValueError(
                f"{source}: entry {position + 1} must be '<key id>:<base64 key>' (key ids: letters, digits, _.-)"
            )
        if key_id in keys:
            raise ValueError(f"{source}: key id {key_id!r} is given twice")
        try:
            keys[key_id] = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{source}: the key of {key_id!r} is not valid base64") from None
    if not keys:
        raise ValueError(f"{source} holds no keys; expected '<key id>:<base64 key>[,...]'")
    return keys


def validate_encryption(value: object, name: str = "encryption") -> MessageEncryption | None:
    """``value`` if it is None or a ``MessageEncryption``, else ``TypeError`` naming ``name``."""
    if value is not None and not isinstance(value, MessageEncryption):
        raise TypeError(
            f"{name} must provide key_id, digest_key, encrypt() and decrypt() (e.g. AESGCMEncryption), "
            f"got {type(value).__name__}"
        )
    return value


def key_id_of(entry: bytes | str) -> str | None:
    """The key id a sealed entry names, or None for any other entry."""
    head = entry[:80].decode("ascii", errors="replace") if isinstance(entry, bytes) else entry[:80]
    envelope = _ENVELOPE.match(head)
    return envelope.group(2) if envelope else None


def decrypt_entry(
    encryption: MessageEncryption | None,
    entry: bytes | str,
    *,
    key: str,
    index: int,
    allow_plaintext: bool = False,
) -> bytes | str:
    """The message JSON of one stored entry; ``DecryptionError`` naming ``key`` and ``index`` if it cannot be had."""
    if entry[:1] in (b"{", "{") or is_compressed(entry):  # plaintext: the common case of an unencrypted store
        if encryption is None or allow_plaintext:
            return entry
        raise DecryptionError(
            key,
            index,
            "it is plaintext but the store encrypts; it was written without encryption= "
            "(rekey(encrypt_plaintext=True) encrypts such entries)",
        )
    if encryption is None:
        key_id = key_id_of(entry)
        if key_id is not None:
            raise DecryptionError(
                key,
                index,
                f"it is encrypted (key id {key_id!r}) but the store has no encryption=; "
                "pass the encryption= it was written with",
            )
        return entry  # neither JSON nor sealed: the codec reports it as corrupt
    try:
        text = entry.decode("utf-8") if isinstance(entry, bytes) else entry
    except UnicodeDecodeError:
        raise DecryptionError(key, index, "it is neither JSON nor a sealed entry (not UTF-8 text)") from None
    try:
        return encryption.decrypt(text, context=key)
    except ValueError as err:
        raise DecryptionError(key, index, str(err)) from err


def _digest_key(key: bytes) -> bytes:
    return hmac.digest(key, b"agent-framework-redis-store/fingerprints/v1", hashlib.sha256)
