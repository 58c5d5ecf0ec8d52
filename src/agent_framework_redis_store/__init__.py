"""A Redis chat message store for Microsoft Agent Framework.

One round trip per turn, atomic trimming, sliding TTL, and suspend/resume that really
resumes, for both Agent Framework generations from one Redis layout.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from ._compat import generation
from .connections import ConnectionSettings, default_retry, redact_url
from .encryption import AESGCMEncryption, MessageEncryption, RekeyProgress, rekey_prefix
from .errors import (
    CorruptMessageError,
    CorruptSessionError,
    DecryptionError,
    RedisPermissionError,
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

if TYPE_CHECKING:
    from typing import Literal

    from .provider import RedisChatHistoryProvider

    GENERATION: Literal["legacy", "current"]
    from .session_store import RedisSessionStore

try:
    __version__ = version("agent-framework-redis-store")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "GENERATION",
    "AESGCMEncryption",
    "ConnectionSettings",
    "CorruptMessageError",
    "CorruptSessionError",
    "DecryptionError",
    "MessageEncryption",
    "PurgeResult",
    "RedisChatHistoryProvider",
    "RedisChatMessageStore",
    "RedisPermissionError",
    "RedisSessionStore",
    "RedisStoreError",
    "RedisStoreFactory",
    "RedisThreadRegistry",
    "RedisUnavailableError",
    "RegistryStats",
    "RekeyProgress",
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
    "rekey_prefix",
    "thread_key",
]

# The 1.x adapters import framework classes the legacy generation lacks: load them on first use.
_CURRENT_ONLY = {"RedisChatHistoryProvider": "provider", "RedisSessionStore": "session_store"}


def __getattr__(name: str) -> Any:
    if name == "GENERATION":
        # Resolved on first use: it imports the framework, which the CLI's registry commands never need.
        return generation()
    module = _CURRENT_ONLY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if generation() != "current":
        raise ImportError(
            f"{name} needs agent-framework-core 1.x (HistoryProvider, SessionStore); this environment has "
            f"the legacy generation, where RedisChatMessageStore is the store to use"
        )
    return getattr(import_module(f".{module}", __name__), name)
