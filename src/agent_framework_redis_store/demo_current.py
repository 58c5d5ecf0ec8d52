"""The demo's conversations in the current (1.x) generation.

Until ``RedisChatHistoryProvider`` lands, a 1.x ``Agent`` is driven with the store API
directly: each turn loads the thread from Redis, sends it with the new message, and
appends the new message and the answer in one round trip.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent_framework import Agent, Message

from .store import RedisChatMessageStore, RedisStoreFactory

__all__ = ["API", "CurrentChat", "CurrentChats", "openai_chat_client"]

API = "Agent + RedisChatMessageStore used directly (the 1.x RedisChatHistoryProvider is coming)"


class CurrentChat:
    """One 1.x agent on one Redis thread."""

    def __init__(self, agent: Agent, store: RedisChatMessageStore, factory: RedisStoreFactory | None = None) -> None:
        self.agent = agent
        self.store = store
        self._factory = factory

    async def ask(self, text: str) -> str:
        """Run one turn on the stored history and store the turn."""
        question = Message(role="user", contents=[text])
        history = await self.store.list_messages()
        response = await self.agent.run([*history, question])
        await self.store.add_messages([question, *response.messages])
        return response.text

    async def suspend(self) -> dict[str, Any]:
        """The store's serialized state (thread metadata only)."""
        return await self.store.serialize()

    async def aclose(self) -> None:
        """Close the store's connections (and the factory's shared pool)."""
        await self.store.aclose()
        if self._factory is not None:
            await self._factory.aclose()


class CurrentChats:
    """Opens conversations with a 1.x ``Agent``, on ``redis_url`` under ``key_prefix``."""

    api = API

    def __init__(self, client: Any, redis_url: str, key_prefix: str) -> None:
        self.client = client
        self.redis_url = redis_url
        self.key_prefix = key_prefix

    def open(
        self, *, name: str, instructions: str, thread_id: str | None = None, max_messages: int | None = None
    ) -> CurrentChat:
        """A thread ``thread_id`` (a new id when None)."""
        store = RedisChatMessageStore(
            self.redis_url, thread_id=thread_id, key_prefix=self.key_prefix, max_messages=max_messages
        )
        return CurrentChat(Agent(self.client, instructions, name=name), store)

    def open_from_factory(
        self, *, name: str, instructions: str, thread_id: Callable[[], str], max_messages: int | None = None
    ) -> CurrentChat:
        """A thread made by ``RedisChatMessageStore.factory`` (one pool for all its stores)."""
        factory = RedisChatMessageStore.factory(
            self.redis_url, thread_id=thread_id, key_prefix=self.key_prefix, max_messages=max_messages
        )
        return CurrentChat(Agent(self.client, instructions, name=name), factory(), factory)

    async def restore(self, state: dict[str, Any], *, name: str, instructions: str) -> CurrentChat:
        """``RedisChatMessageStore.deserialize(state, redis_url=...)``."""
        store = await RedisChatMessageStore.deserialize(state, redis_url=self.redis_url)
        return CurrentChat(Agent(self.client, instructions, name=name), store)


def openai_chat_client(
    *, model: str, api_key: str, base_url: str | None = None, azure_endpoint: str | None = None, api_version: str
) -> Any:
    """The 1.x ``OpenAIChatCompletionClient`` (the seed's chat completions API), on OpenAI or Azure OpenAI."""
    from agent_framework_openai import OpenAIChatCompletionClient

    if azure_endpoint:
        return OpenAIChatCompletionClient(
            model, api_key=api_key, azure_endpoint=azure_endpoint, api_version=api_version
        )
    return OpenAIChatCompletionClient(model, api_key=api_key, base_url=base_url)
