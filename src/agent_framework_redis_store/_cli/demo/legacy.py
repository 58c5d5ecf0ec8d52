"""The demo's conversations in the legacy generation: ``AgentThread`` + a message store.

This is the seed notebook's API (agent-framework-core 1.0.0b251223): a
``RedisChatMessageStore`` on an ``AgentThread``, or ``chat_message_store_factory`` on the
agent, and ``AgentThread.serialize()`` / ``AgentThread.deserialize()`` to suspend and resume.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# pyright checks against the current generation, where these names do not exist.
from agent_framework import AgentThread  # pyright: ignore[reportAttributeAccessIssue]

from agent_framework_redis_store import RedisChatMessageStore, RedisStoreFactory

__all__ = ["API", "LegacyChat", "LegacyChats", "openai_chat_client"]

API = "AgentThread + RedisChatMessageStore (chat_message_store_factory)"


class LegacyChat:
    """One agent talking on one ``AgentThread`` whose messages live in Redis."""

    def __init__(self, agent: Any, thread: Any, factory: RedisStoreFactory | None = None) -> None:
        self.agent = agent
        self.thread = thread
        self._factory = factory

    @property
    def store(self) -> RedisChatMessageStore:
        """The thread's message store."""
        return self.thread.message_store

    async def ask(self, text: str) -> str:
        """Run one turn and return the agent's answer."""
        response = await self.agent.run(text, thread=self.thread)
        return response.text

    async def settle(self) -> None:
        """Wait for the thread's background compaction, if one is running."""
        await self.store.wait_for_compaction()

    async def suspend(self) -> dict[str, Any]:
        """The thread's serialized state (``AgentThread.serialize()``)."""
        return await self.thread.serialize()

    async def aclose(self) -> None:
        """Close the store's connections (and the factory's shared pool)."""
        await self.store.aclose()
        if self._factory is not None:
            await self._factory.aclose()


class LegacyChats:
    """Opens conversations the legacy way, on ``redis_url`` under ``key_prefix``."""

    api = API

    def __init__(self, client: Any, redis_url: str, key_prefix: str) -> None:
        self.client = client
        self.redis_url = redis_url
        self.key_prefix = key_prefix

    def _agent(self, name: str, instructions: str, **kwargs: Any) -> Any:
        return self.client.create_agent(name=name, instructions=instructions, **kwargs)

    def open(
        self,
        *,
        name: str,
        instructions: str,
        thread_id: str | None = None,
        max_messages: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> LegacyChat:
        """``AgentThread(message_store=RedisChatMessageStore(...))``; a new thread id when None."""
        store = RedisChatMessageStore(
            self.redis_url,
            thread_id=thread_id,
            key_prefix=self.key_prefix,
            max_messages=max_messages,
            **dict(options or {}),
        )
        return LegacyChat(self._agent(name, instructions), AgentThread(message_store=store))

    def open_from_factory(
        self, *, name: str, instructions: str, thread_id: Callable[[], str], max_messages: int | None = None
    ) -> LegacyChat:
        """An agent with ``chat_message_store_factory=``, and a thread from ``agent.get_new_thread()``."""
        factory = RedisChatMessageStore.factory(
            self.redis_url, thread_id=thread_id, key_prefix=self.key_prefix, max_messages=max_messages
        )
        agent = self._agent(name, instructions, chat_message_store_factory=factory)
        return LegacyChat(agent, agent.get_new_thread(), factory)

    async def restore(
        self, state: dict[str, Any], *, name: str, instructions: str, max_messages: int | None = None
    ) -> LegacyChat:
        """``AgentThread.deserialize(state, message_store=RedisChatMessageStore(redis_url))``.

        The state carries the thread's key prefix and ``max_messages``; the store adopts them.
        """
        store = RedisChatMessageStore(self.redis_url)
        thread = await AgentThread.deserialize(state, message_store=store)
        return LegacyChat(self._agent(name, instructions), thread)


def openai_chat_client(
    *, model: str, api_key: str, base_url: str | None = None, azure_endpoint: str | None = None, api_version: str
) -> Any:
    """The seed's ``OpenAIChatClient`` (chat completions), on OpenAI or on an Azure OpenAI deployment."""
    from agent_framework.openai import OpenAIChatClient  # pyright: ignore[reportAttributeAccessIssue]
    from openai import AsyncAzureOpenAI, AsyncOpenAI  # pyright: ignore[reportMissingImports]

    if azure_endpoint:
        async_client = AsyncAzureOpenAI(api_key=api_key, api_version=api_version, azure_endpoint=azure_endpoint)
    else:
        async_client = AsyncOpenAI(api_key=api_key, base_url=base_url)
    return OpenAIChatClient(model_id=model, async_client=async_client)  # pyright: ignore[reportCallIssue]
