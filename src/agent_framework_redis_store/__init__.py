"""A Redis chat message store for Microsoft Agent Framework.

One round trip per turn, atomic trimming, sliding TTL, and suspend/resume that really
resumes, for both Agent Framework generations from one Redis layout.
"""

from importlib.metadata import PackageNotFoundError, version

from ._compat import GENERATION
from .connections import ConnectionSettings, default_retry, redact_url
from .errors import (
    CorruptMessageError,
    RedisStoreError,
    RedisUnavailableError,
    StoreStateError,
    ThreadNotFoundError,
    ThreadRecordError,
)
from .keys import thread_key
from .registry import (
    PurgeResult,
    RedisThreadRegistry,
    RegistryStats,
    ThreadInfo,
    ThreadPage,
    ThreadRecord,
    ThreadSummary,
)
from .store import RedisChatMessageStore, RedisStoreFactory

try:
    __version__ = version("agent-framework-redis-store")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "GENERATION",
    "ConnectionSettings",
    "CorruptMessageError",
    "PurgeResult",
    "RedisChatMessageStore",
    "RedisStoreError",
    "RedisStoreFactory",
    "RedisThreadRegistry",
    "RedisUnavailableError",
    "RegistryStats",
    "StoreStateError",
    "ThreadInfo",
    "ThreadNotFoundError",
    "ThreadPage",
    "ThreadRecord",
    "ThreadRecordError",
    "ThreadSummary",
    "__version__",
    "default_retry",
    "redact_url",
    "thread_key",
]
