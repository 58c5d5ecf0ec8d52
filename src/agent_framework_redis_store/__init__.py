"""A Redis chat message store for Microsoft Agent Framework.

One round trip per turn, atomic trimming, sliding TTL, and suspend/resume that really
resumes, for both Agent Framework generations from one Redis layout.

Every public name is exported here; the modules behind them are private and may move.
Layers (see docs/ARCHITECTURE.md): ``_core`` (keys, scripts, encoding, connections,
encryption, one thread's storage), ``_adapters`` (the framework generations), ``_ops``
(registry, rekey, migrate), ``_cli`` (the ``redis-chat-store`` command, extra ``[cli]``).
Helpers for tests and notebooks live in ``agent_framework_redis_store.testing``.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from ._adapters.checkpoints import (
    CheckpointInfo,
    CheckpointPage,
    CheckpointStats,
    RedisCheckpointStorage,
    WorkflowSummary,
)
from ._adapters.store import RedisChatMessageStore, RedisStoreFactory
from ._core.compaction import CompactionResult, SummaryCompaction
from ._core.compat import generation
from ._core.connection import ConnectionOptions, ConnectionSettings, default_retry, redact_url
from ._core.encryption import AESGCMEncryption, MessageEncryption
from ._core.errors import (
    CheckpointNotFoundError,
    CorruptCheckpointError,
    CorruptMessageError,
    CorruptSessionError,
    CorruptThreadMetaError,
    DecryptionError,
    RedisOutOfMemoryError,
    RedisPermissionError,
    RedisStoreError,
    RedisUnavailableError,
    StoreStateError,
    ThreadNotFoundError,
    ThreadRecordError,
)
from ._core.groups import CharacterEstimator, Tokenizer
from ._core.keyspace import Keyspace, ThreadKeys, WorkflowKeys
from ._core.meta import ThreadInfo, ThreadSummary
from ._core.options import CheckpointStorageOptions, RegistryOptions, SessionStoreOptions, StoreOptions, ThreadOptions
from ._core.records import ThreadRecord
from ._core.telemetry import configure_telemetry
from ._ops.migrate import (
    MigrationProgress,
    MigrationReport,
    ThreadMigration,
    migrate_agent_framework_redis,
    migrate_langchain,
)
from ._ops.registry import ErasureReceipt, PurgeResult, RedisThreadRegistry, RegistryStats, ThreadPage
from ._ops.rekey import RekeyProgress, rekey_prefix

if TYPE_CHECKING:
    from typing import Literal

    from ._adapters.history import RedisChatHistoryProvider
    from ._adapters.session_store import RedisSessionStore

    GENERATION: Literal["legacy", "current"]

try:
    __version__ = version("agent-framework-redis-store")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "GENERATION",
    "AESGCMEncryption",
    "CharacterEstimator",
    "CheckpointInfo",
    "CheckpointNotFoundError",
    "CheckpointPage",
    "CheckpointStats",
    "CheckpointStorageOptions",
    "CompactionResult",
    "ConnectionOptions",
    "ConnectionSettings",
    "CorruptCheckpointError",
    "CorruptMessageError",
    "CorruptSessionError",
    "CorruptThreadMetaError",
    "DecryptionError",
    "ErasureReceipt",
    "Keyspace",
    "MessageEncryption",
    "MigrationProgress",
    "MigrationReport",
    "PurgeResult",
    "RedisChatHistoryProvider",
    "RedisChatMessageStore",
    "RedisCheckpointStorage",
    "RedisOutOfMemoryError",
    "RedisPermissionError",
    "RedisSessionStore",
    "RedisStoreError",
    "RedisStoreFactory",
    "RedisThreadRegistry",
    "RedisUnavailableError",
    "RegistryOptions",
    "RegistryStats",
    "RekeyProgress",
    "SessionStoreOptions",
    "StoreOptions",
    "StoreStateError",
    "SummaryCompaction",
    "ThreadInfo",
    "ThreadKeys",
    "ThreadMigration",
    "ThreadNotFoundError",
    "ThreadOptions",
    "ThreadPage",
    "ThreadRecord",
    "ThreadRecordError",
    "ThreadSummary",
    "Tokenizer",
    "WorkflowKeys",
    "WorkflowSummary",
    "__version__",
    "configure_telemetry",
    "default_retry",
    "migrate_agent_framework_redis",
    "migrate_langchain",
    "redact_url",
    "rekey_prefix",
    "thread_key",
]


def thread_key(key_prefix: str, thread_id: str) -> str:
    """The Redis list that holds a thread's messages (``Keyspace(key_prefix).thread(thread_id).messages``)."""
    return Keyspace(key_prefix).thread(thread_id).messages


def _public(*objects: Any) -> None:
    # Users see agent_framework_redis_store.X, never the private module it lives in.
    for obj in objects:
        obj.__module__ = __name__


_public(*(globals()[name] for name in __all__ if name not in {"GENERATION", "__version__"} and name in globals()))

# The 1.x adapters import framework classes the legacy generation lacks: load them on first use.
_CURRENT_ONLY = {"RedisChatHistoryProvider": "history", "RedisSessionStore": "session_store"}


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
    cls = getattr(import_module(f"._adapters.{module}", __name__), name)
    cls.__module__ = __name__
    return cls
