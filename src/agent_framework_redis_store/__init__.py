"""A Redis chat message store for Microsoft Agent Framework.

One round trip per turn, atomic trimming, sliding TTL, and suspend/resume that really
resumes, for both Agent Framework generations from one Redis layout.
"""

from importlib.metadata import PackageNotFoundError, version

from ._compat import GENERATION
from .connections import ConnectionSettings, default_retry, redact_url
from .encryption import AESGCMEncryption, MessageEncryption, RekeyProgress, rekey_prefix
from .errors import (
    CorruptMessageError,
    DecryptionError,
    RedisPermissionError,
    RedisStoreError,
    RedisUnavailableError,
    StoreStateError,
)
from .keys import thread_key
from .store import RedisChatMessageStore, RedisStoreFactory

try:
    __version__ = version("agent-framework-redis-store")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "GENERATION",
    "AESGCMEncryption",
    "ConnectionSettings",
    "CorruptMessageError",
    "DecryptionError",
    "MessageEncryption",
    "RedisChatMessageStore",
    "RedisPermissionError",
    "RedisStoreError",
    "RedisStoreFactory",
    "RedisUnavailableError",
    "RekeyProgress",
    "StoreStateError",
    "__version__",
    "default_retry",
    "redact_url",
    "rekey_prefix",
    "thread_key",
]
