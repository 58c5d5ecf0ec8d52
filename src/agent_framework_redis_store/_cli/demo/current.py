"""The demo's conversations in the current (1.x) generation: ``AgentSession`` + the provider.

One ``RedisChatHistoryProvider`` on the agent keeps every session's messages in Redis
(the session id is the thread id), and ``session.to_dict()`` / ``AgentSession.from_dict()``
suspend and resume a conversation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent_framework import Agent, AgentSession

from agent_framework_redis_store import RedisChatHistoryProvider, RedisChatMessageStore

__all__ = ["API", "CurrentChat", "CurrentChats", "openai_chat_client"]

API = "Agent + AgentSession + RedisChatHistoryProvider"


class CurrentChat:
    """One 1.x agent on one session whose history the provider keeps in Redis."""

    def __init__(self, agent: Agent, session: AgentSession, provider: RedisChatHistoryProvider) -> None:
        self.agent = agent
        self.session = session
        self.provider = provider

    @property
    def store(self) -> RedisChatMessageStore:
        """The session's thread, on the provider's pool (``provider.store_for(session_id)``)."""
        return self.provider.store_for(self.session.session_id)

    async def ask(self, text: str) -> str:
        """Run one turn in the session and return the agent's answer."""
        response = await self.agent.run(text, session=self.session)
        return response.text

    async def settle(self) -> None:
        """Wait for the provider's background compactions, if any are running."""
        await self.provider.wait_for_compaction()

    async def suspend(self) -> dict[str, Any]:
        """The session's serialized state (``session.to_dict()``)."""
        return self.session.to_dict()

    async def aclose(self) -> None:
        """Close the provider's connection pool."""
        await self.provider.aclose()


class CurrentChats:
    """Opens 1.x sessions on ``redis_url`` under ``key_prefix``."""

    api = API

    def __init__(self, client: Any, redis_url: str, key_prefix: str) -> None:
        self.client = client
        self.redis_url = redis_url
        self.key_prefix = key_prefix

    def _agent(
        self, name: str, instructions: str, max_messages: int | None, options: dict[str, Any] | None = None
    ) -> tuple[Agent, RedisChatHistoryProvider]:
        provider = RedisChatHistoryProvider(
            self.redis_url, key_prefix=self.key_prefix, max_messages=max_messages, **dict(options or {})
        )
        return Agent(self.client, instructions, name=name, context_providers=[provider]), provider

    def open(
        self,
        *,
        name: str,
        instructions: str,
        thread_id: str | None = None,
        max_messages: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> CurrentChat:
        """``agent.create_session(session_id=thread_id)`` (a new id when None)."""
        agent, provider = self._agent(name, instructions, max_messages, options)
        return CurrentChat(agent, agent.create_session(session_id=thread_id), provider)

    def open_from_factory(
        self, *, name: str, instructions: str, thread_id: Callable[[], str], max_messages: int | None = None
    ) -> CurrentChat:
        """In 1.x one provider serves every session: the factory names the session."""
        return self.open(name=name, instructions=instructions, thread_id=thread_id(), max_messages=max_messages)

    async def restore(
        self, state: dict[str, Any], *, name: str, instructions: str, max_messages: int | None = None
    ) -> CurrentChat:
        """``AgentSession.from_dict(state)`` on a new agent and provider (the app's provider settings)."""
        agent, provider = self._agent(name, instructions, max_messages)
        return CurrentChat(agent, AgentSession.from_dict(state), provider)


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
