"""An offline stand-in for a chat model, so the demo runs without an API key.

``OfflineChatClient`` is a real ``BaseChatClient`` of the installed Agent Framework
generation. It does not understand language; it picks facts out of the user's earlier
turns (name, food preferences, project, what they are testing) with a few patterns and
answers from them, so a reader can see exactly which history reached the model.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._core.compat import generation

__all__ = ["OfflineChatClient", "offline_reply"]

MODEL_ID = "offline-scripted"

_NAME = re.compile(r"\b(?:(?i:my name is)|I'm|I am)\s+([A-Z][a-z]+)\b")
_LIKE = re.compile(r"\bI (?:also |really )?(?:love|like|enjoy)\s+([^.,!?]+)", re.IGNORECASE)
_PREFER = re.compile(r"\bI (?:also )?prefer\s+([^.,!?]+)", re.IGNORECASE)
_WORKING_ON = re.compile(r"\bI'?m working on\s+([^.!?]+)", re.IGNORECASE)
_INTERESTED = re.compile(r"\bI'?m (?:specifically |really )?interested in\s+([^.!?]+)", re.IGNORECASE)
_TESTING = re.compile(r"\bI'?m testing\s+([^.!?]+)", re.IGNORECASE)
# "Draft a refund of 40 EUR for order 1017 (the kettle arrived broken)."
_REFUND = re.compile(r"\bdraft an? refund of ([^.!?]+?) for (order [\w-]+)(?: \(([^)]*)\))?", re.IGNORECASE)
_FOOD_WORDS = ("food", "cuisine", "pizza", "pasta", "sushi", "vegetarian", "vegan", "curry", "burger")


@dataclass
class _Facts:
    name: str | None = None
    likes: list[str] = field(default_factory=list)
    prefers: list[str] = field(default_factory=list)
    projects: list[str] = field(default_factory=list)
    interests: list[str] = field(default_factory=list)
    testing: list[str] = field(default_factory=list)

    def learn(self, text: str) -> None:
        if name := _NAME.search(text):
            self.name = name.group(1)
        for pattern, into in (
            (_LIKE, self.likes),
            (_PREFER, self.prefers),
            (_WORKING_ON, self.projects),
            (_INTERESTED, self.interests),
            (_TESTING, self.testing),
        ):
            into.extend(match.strip() for match in pattern.findall(text))

    def food(self) -> str:
        """The food preferences as a phrase ("you prefer X and you love Y"), or ""."""
        return _join(self._tastes(lambda x: any(w in x.lower() for w in _FOOD_WORDS)))

    def _tastes(self, keep: Callable[[str], bool] = lambda x: True) -> list[str]:
        return [f"you prefer {x}" for x in self.prefers if keep(x)] + [f"you love {x}" for x in self.likes if keep(x)]

    def __bool__(self) -> bool:
        return bool(self.name or self.likes or self.prefers or self.projects or self.interests or self.testing)

    def summary(self) -> str:
        parts = []
        if self.name:
            parts.append(f"your name is {self.name}")
        parts += self._tastes()
        parts += [f"you are working on {x}" for x in self.projects]
        parts += [f"you are interested in {x}" for x in self.interests]
        parts += [f"you are testing {x}" for x in self.testing]
        return _join(parts)


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _text(message: Any) -> str:
    return message.text or ""


def _role(message: Any) -> str:
    role = message.role
    return str(getattr(role, "value", role))


# A summary this package stored (``SummaryCompaction``) stands for earlier user turns.
_SUMMARY_PREFIX = "Summary of the earlier conversation: "
# What the offline model writes as a summary: the user's own sentences that carried facts.
_SAID = "Earlier the user said: "


def _is_summary_request(messages: Sequence[Any]) -> bool:
    """A summarizer's request: instructions about a summary, then a transcript of ``[role] text`` lines."""
    system = " ".join(_text(m) for m in messages if _role(m) == "system").lower()
    last = _text(messages[-1]) if messages else ""
    return "summary" in system and any(line.startswith("[") for line in last.splitlines())


def _summarize(transcript: str) -> str:
    """The facts of a transcript (and of the previous summary in it), as the user's own sentences."""
    said: list[str] = []
    for line in transcript.splitlines():
        line = line.removeprefix("Previous summary:").strip()
        if line.startswith(_SAID):
            said += [s for s in line.removeprefix(_SAID).split(" | ") if s]
        elif line.startswith("[user] "):
            sentence = line.removeprefix("[user] ").strip()
            facts = _Facts()
            facts.learn(sentence)
            if facts:
                said.append(sentence)
    return _SAID + " | ".join(said) if said else "Nothing worth remembering was said yet."


def offline_reply(messages: Sequence[Any]) -> str:
    """What the offline model answers to ``messages`` (framework messages, oldest first)."""
    if _is_summary_request(messages):
        return _summarize(_text(messages[-1]))
    # A stored summary carries the user's earlier sentences: read them as earlier user turns.
    summarized = [
        sentence
        for m in messages
        if _role(m) == "assistant" and _text(m).startswith(_SUMMARY_PREFIX + _SAID)
        for sentence in _text(m).removeprefix(_SUMMARY_PREFIX + _SAID).split(" | ")
    ]
    users = summarized + [_text(m) for m in messages if _role(m) == "user" and _text(m)]
    if not users:
        return "Hello! (offline model: I was sent no user message.)"
    *earlier, newest = users
    known = _Facts()
    for text in earlier:
        known.learn(text)
    now = _Facts()
    now.learn(newest)
    question = newest.lower()
    history = f"[offline model; history: {len(earlier)} earlier user message{'' if len(earlier) == 1 else 's'}]"

    if refund := _REFUND.search(newest):
        amount, order, reason = refund.groups()
        because = f" because {reason}" if reason else ""
        answer = f"Dear customer, we are refunding {amount} for {order}{because}. We are sorry for the trouble."
    elif now and "?" not in newest:
        greeting = f"Nice to meet you, {now.name}! " if now.name else ""
        answer = f"{greeting}Noted: {now.summary()}."
    elif "food" in question and ("remember" in question or "prefer" in question):
        food = known.food()
        answer = f"Yes: {food}." if food else "You have not told me about your food preferences yet."
    elif "remember" in question or "recall" in question or "before" in question:
        if "testing" in question and known.testing:
            answer = f"Yes, you said you are testing {_join(known.testing)}."
        elif "working on" in question and known.projects:
            topic = f", specifically {_join(known.interests)}" if known.interests else ""
            answer = f"You were working on {_join(known.projects)}{topic}."
        else:
            summary = known.summary()
            answer = f"You told me that {summary}." if summary else "This is the start of our conversation."
    elif "recommend" in question or "suggest" in question:
        answer = _recommend(question, known)
    elif "joke" in question:
        answer = "Why did the database break up with the cache? It felt it was only being used for quick answers."
    elif "weather" in question:
        answer = "I am offline, so I cannot look up the weather."
    elif "how are you" in question:
        answer = "I am fine, thank you!"
    else:
        answer = "Got it."
    return f"{answer} {history}"


def _recommend(question: str, known: _Facts) -> str:
    if "restaurant" in question or "food" in question or "eat" in question:
        food = known.food()
        if not food:
            return "Tell me what food you like and I will suggest a place."
        return f"Since {food}, look for a restaurant that caters to exactly that; I can help you compare menus."
    if "librar" in question:
        base = "PyTorch, TensorFlow/Keras and JAX"
        about = f" for {_join(known.projects)}" if known.projects else ""
        return f"For neural networks{about}: {base}."
    return "I would need to know more about you to suggest something."


if generation() == "legacy":
    # pyright checks against the current generation, where these names do not exist.
    from agent_framework import (  # pyright: ignore[reportAttributeAccessIssue]
        BaseChatClient,
        ChatMessage,  # pyright: ignore[reportAttributeAccessIssue]
        ChatResponse,
        ChatResponseUpdate,
        TextContent,  # pyright: ignore[reportAttributeAccessIssue]
        use_function_invocation,  # pyright: ignore[reportAttributeAccessIssue]
    )

    # use_function_invocation: the legacy ChatAgent warns about a client without it.
    @use_function_invocation
    class OfflineChatClient(BaseChatClient):  # type: ignore[misc]
        """A scripted chat model that answers from the conversation history (no network)."""

        OTEL_PROVIDER_NAME = "offline"

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.model_id = MODEL_ID

        async def _inner_get_response(self, *, messages: Any, chat_options: Any, **kwargs: Any) -> Any:
            reply = ChatMessage(role="assistant", text=offline_reply(messages))
            return ChatResponse(messages=[reply], model_id=MODEL_ID)  # pyright: ignore[reportCallIssue]

        async def _inner_get_streaming_response(
            self, *, messages: Any, chat_options: Any, **kwargs: Any
        ) -> AsyncIterable[Any]:
            yield ChatResponseUpdate(role="assistant", contents=[TextContent(text=offline_reply(messages))])

else:
    from agent_framework import (
        BaseChatClient,
        ChatResponse,
        ChatResponseUpdate,
        Content,
        FunctionInvocationLayer,
        Message,
    )

    # FunctionInvocationLayer: the 1.x Agent warns about a client without it.
    class OfflineChatClient(FunctionInvocationLayer[Any], BaseChatClient[Any]):  # type: ignore[misc,no-redef]
        """A scripted chat model that answers from the conversation history (no network)."""

        OTEL_PROVIDER_NAME = "offline"

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.model_id = MODEL_ID

        def _inner_get_response(self, *, messages: Any, stream: bool, options: Any, **kwargs: Any) -> Any:
            text = offline_reply(messages)
            if stream:

                async def _updates() -> AsyncIterable[Any]:
                    yield ChatResponseUpdate(role="assistant", contents=[Content.from_text(text)])

                return self._build_response_stream(_updates())

            async def _respond() -> Any:
                return ChatResponse(messages=[Message(role="assistant", contents=[text])], model=MODEL_ID)

            return _respond()
