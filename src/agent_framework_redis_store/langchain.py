"""LangChain messages and this package's threads (extra ``[langchain]``: langchain-core).

``from_langchain_dict`` and ``to_langchain_dicts`` convert between LangChain's
``message_to_dict`` dicts and framework message dicts; they need neither langchain-core
nor a connection, and importing them does not import langchain-core.
"""

from ._adapters.langchain_messages import LANGCHAIN_PROPERTY, from_langchain_dict, to_langchain_dicts

__all__ = ["LANGCHAIN_PROPERTY", "from_langchain_dict", "to_langchain_dicts"]

for _function in (from_langchain_dict, to_langchain_dicts):
    _function.__module__ = __name__
