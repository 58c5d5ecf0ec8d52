"""A scripted chat client for both Agent Framework generations.

Its answers prove what history it was shown:

* ``"call <tool> <json args>"`` as the newest user text asks for that tool call, and
  ``"calls <json [[tool, args], ...]>"`` for several calls at once (parallel tool calls);
* after a tool result it answers ``"tool <name> returned <result>"``;
* otherwise it answers ``"seen N: <user text 1> | <user text 2> | ..."``, listing every
  user text it received, oldest first.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Sequence
from typing import Any

import agent_framework as af

from agent_framework_redis_store import GENERATION


def _text_of(message: Any) -> str:
    return message.text or ""


def role_of(message: Any) -> str:
    role = message.role
    return str(getattr(role, "value", role))


def script_reply(messages: Sequence[Any]) -> dict[str, Any]:
    """What the scripted model answers to ``messages``: {'text': ...} or {'call': (name, args)}."""
    last = messages[-1] if messages else None
    if last is not None:
        for content in last.contents:
            if getattr(content, "type", None) == "function_result" or type(content).__name__ == "FunctionResultContent":
                return {"text": f"tool {content.call_id} returned {content.result}"}
    users = [_text_of(m) for m in messages if role_of(m) == "user" and _text_of(m)]
    newest = users[-1] if users else ""
    if newest.startswith("call "):
        _, name, *rest = newest.split(" ", 2)
        return {"calls": [(name, json.loads(rest[0]) if rest else {})]}
    if newest.startswith("calls "):
        return {"calls": [(name, args) for name, args in json.loads(newest.removeprefix("calls "))]}
    return {"text": f"seen {len(users)}: " + " | ".join(users)}


def call_id(request: int, position: int, reply: dict[str, Any]) -> str:
    """``call_<request>`` for a single call, ``call_<request>_<position>`` for parallel ones."""
    return f"call_{request}" if len(reply["calls"]) == 1 else f"call_{request}_{position}"


class _Recorder:
    """Keeps every request the model received, for assertions."""

    def __init__(self) -> None:
        self.requests: list[list[Any]] = []
        self.calls = 0

    def record(self, messages: Sequence[Any]) -> dict[str, Any]:
        self.requests.append(list(messages))
        self.calls += 1
        return script_reply(messages)


if GENERATION == "legacy":
    # pyright checks against the current generation, where these names do not exist.
    from agent_framework import (  # pyright: ignore[reportAttributeAccessIssue]
        BaseChatClient,
        ChatMessage,  # pyright: ignore[reportAttributeAccessIssue]
        ChatResponse,
        ChatResponseUpdate,
        FunctionCallContent,  # pyright: ignore[reportAttributeAccessIssue]
        TextContent,  # pyright: ignore[reportAttributeAccessIssue]
        use_function_invocation,  # pyright: ignore[reportAttributeAccessIssue]
    )

    @use_function_invocation
    class ScriptedChatClient(BaseChatClient):  # type: ignore[misc]
        """Legacy-generation scripted model."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.recorder = _Recorder()

        def _contents(self, reply: dict[str, Any]) -> list[Any]:
            if "calls" in reply:
                return [
                    FunctionCallContent(call_id=call_id(self.recorder.calls, i, reply), name=name, arguments=args)
                    for i, (name, args) in enumerate(reply["calls"])
                ]
            return [TextContent(text=reply["text"])]

        async def _inner_get_response(self, *, messages: Any, chat_options: Any, **kwargs: Any) -> Any:
            reply = self.recorder.record(messages)
            return ChatResponse(
                messages=[ChatMessage(role="assistant", contents=self._contents(reply))],
                response_id=f"resp_{self.recorder.calls}",
            )

        async def _inner_get_streaming_response(
            self, *, messages: Any, chat_options: Any, **kwargs: Any
        ) -> AsyncIterable[Any]:
            reply = self.recorder.record(messages)
            if "text" in reply:
                words = reply["text"].split(" ")
                for i, word in enumerate(words):
                    piece = word if i == 0 else " " + word
                    yield ChatResponseUpdate(role="assistant", contents=[TextContent(text=piece)])
            else:
                yield ChatResponseUpdate(role="assistant", contents=self._contents(reply))

    def make_agent(client: Any, instructions: str = "You are a test assistant.", **kwargs: Any) -> Any:
        """A legacy ChatAgent through the seed's ``create_agent``."""
        return client.create_agent(name="TestBot", instructions=instructions, **kwargs)

    def user_message(text: str) -> Any:
        return ChatMessage(role="user", text=text)

else:
    from agent_framework import BaseChatClient, ChatResponse, ChatResponseUpdate, Content, Message

    FunctionInvocationLayer = af.FunctionInvocationLayer  # type: ignore[attr-defined]

    class _RawScriptedChatClient(BaseChatClient):  # type: ignore[misc]
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.recorder = _Recorder()

        def _contents(self, reply: dict[str, Any]) -> list[Any]:
            if "calls" in reply:
                return [
                    Content.from_function_call(
                        call_id=call_id(self.recorder.calls, i, reply), name=name, arguments=args
                    )
                    for i, (name, args) in enumerate(reply["calls"])
                ]
            return [Content.from_text(reply["text"])]

        def _inner_get_response(self, *, messages: Any, stream: bool, options: Any, **kwargs: Any) -> Any:
            reply = self.recorder.record(messages)
            contents = self._contents(reply)
            if not stream:

                async def _respond() -> Any:
                    return ChatResponse(
                        messages=[Message(role="assistant", contents=contents)],
                        response_id=f"resp_{self.recorder.calls}",
                    )

                return _respond()

            async def _stream() -> AsyncIterable[Any]:
                if "text" in reply:
                    for i, word in enumerate(reply["text"].split(" ")):
                        piece = word if i == 0 else " " + word
                        yield ChatResponseUpdate(role="assistant", contents=[Content.from_text(piece)])
                else:
                    yield ChatResponseUpdate(role="assistant", contents=contents)

            return self._build_response_stream(_stream())

    class ScriptedChatClient(FunctionInvocationLayer, _RawScriptedChatClient):  # type: ignore[misc,valid-type]
        """Current-generation scripted model (with the framework's function invocation)."""

    def make_agent(client: Any, instructions: str = "You are a test assistant.", **kwargs: Any) -> Any:
        """A 1.x Agent."""
        return af.Agent(client, instructions, name="TestBot", **kwargs)

    def user_message(text: str) -> Any:
        return Message(role="user", contents=[text])
