"""LangChain on the same threads (extra ``[langchain]``: langchain-core).

``RedisChatMessageHistory`` is a langchain-core ``BaseChatMessageHistory`` that keeps its
messages as one of this package's threads, so a LangChain chain and an Agent Framework
agent continue the same conversation, tool calls included::

    from agent_framework_redis_store.langchain import RedisChatMessageHistory

    history = RedisChatMessageHistory("user_42", "redis://localhost:6379", ttl=86400)
    chain = RunnableWithMessageHistory(model, RedisChatMessageHistory.factory("redis://localhost:6379"))

``from_langchain_dict`` (one message), ``from_langchain_dicts`` (a conversation) and
``to_langchain_dicts`` convert between LangChain's ``message_to_dict`` dicts and framework
message dicts; they need neither langchain-core nor a connection, and importing them does
not import langchain-core.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._adapters.langchain_messages import (
    LANGCHAIN_PROPERTY,
    from_langchain_dict,
    from_langchain_dicts,
    to_langchain_dicts,
)

if TYPE_CHECKING:
    from ._adapters.langchain import RedisChatMessageHistory, RedisChatMessageHistoryFactory

__all__ = [
    "LANGCHAIN_PROPERTY",
    "RedisChatMessageHistory",
    "RedisChatMessageHistoryFactory",
    "from_langchain_dict",
    "from_langchain_dicts",
    "to_langchain_dicts",
]

for _function in (from_langchain_dict, from_langchain_dicts, to_langchain_dicts):
    _function.__module__ = __name__

# The history classes subclass langchain-core's: load them (and it) on first use.
_NEEDS_LANGCHAIN = {"RedisChatMessageHistory", "RedisChatMessageHistoryFactory"}


def __getattr__(name: str) -> Any:
    if name not in _NEEDS_LANGCHAIN:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = import_module("._adapters.langchain", __package__)
    except ImportError as err:
        if err.name is None or not err.name.startswith("langchain_core"):
            raise
        raise ImportError(
            f"{name} needs the [langchain] extra: pip install 'agent-framework-redis-store[langchain]' "
            f"(missing: {err.name.split('.')[0]})"
        ) from err
    cls = getattr(module, name)
    cls.__module__ = __name__
    globals()[name] = cls
    return cls
