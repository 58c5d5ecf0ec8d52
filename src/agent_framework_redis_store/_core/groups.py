"""Tool-call groups: which messages belong together, so that history is never cut inside one.

A model API rejects a tool result whose call is missing, and a call whose result is
missing when the conversation has moved on (OpenAI: HTTP 400). A *group* is an assistant
message with calls (parallel calls included), the reasoning that came with it, the tool
messages with their results and the approval responses answering it. Everything here
works on the stored message dicts (``to_dict()`` of either generation), never on
framework objects, so it runs the same in both generations.

* ``shape`` gives what the Lua scripts need per message: its token count and whether it
  continues the group of an earlier message (a cut just before it would orphan something).
* ``repair`` is applied to whatever is handed to the model: it removes results without
  their call, and calls without their result once the conversation has moved past them,
  so history written before group-safe trimming (or by other writers) is still accepted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "CharacterEstimator",
    "MessageShape",
    "Tokenizer",
    "index_entry",
    "may_link",
    "open_group",
    "repair",
    "shape",
]

# Content types that open a call, with the field that names it. Hosted calls (MCP, code
# interpreter, ...) usually carry their result in the same message; a result in another
# message still links back by the same field.
_CALLS = {
    "function_call": "call_id",
    "computer_tool_call": "call_id",
    "mcp_server_tool_call": "call_id",
    "code_interpreter_tool_call": "call_id",
    "shell_tool_call": "call_id",
    "search_tool_call": "call_id",
    "image_generation_tool_call": "image_id",
}
_RESULTS = {
    "function_result": "call_id",
    "computer_tool_result": "call_id",
    "mcp_server_tool_result": "call_id",
    "code_interpreter_tool_result": "call_id",
    "shell_tool_result": "call_id",
    "search_tool_result": "call_id",
    "image_generation_tool_result": "image_id",
}
# Calls the API insists on seeing answered: a client-side function (its result is ours to send).
_NEEDS_RESULT = {"function_call"}
_APPROVAL_REQUEST = "function_approval_request"
_APPROVAL_RESPONSE = "function_approval_response"
_REASONING = "text_reasoning"
# Every content type that opens or answers something.
_LINKED = frozenset({*_CALLS, *_RESULTS, _APPROVAL_REQUEST, _APPROVAL_RESPONSE})


def may_link(text: str) -> bool:
    """False when a message's stored JSON certainly holds no call, result or approval content.

    A cheap test on the text, so a history without tool calls is never parsed twice: every
    linking content type ends in ``_call``, ``_result``, ``_request`` or ``_response``.
    """
    return '_call"' in text or '_result"' in text or "approval_re" in text


@runtime_checkable
class Tokenizer(Protocol):
    """Anything with ``count_tokens(text) -> int`` (the framework's ``TokenizerProtocol``)."""

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` is."""
        ...


class CharacterEstimator:
    """The framework's default estimate: four characters a token (at least one)."""

    def count_tokens(self, text: str) -> int:
        """``max(1, len(text) // 4)``."""
        return max(1, len(text) // 4)

    def __repr__(self) -> str:
        return "CharacterEstimator()"


def _role(message: dict[str, Any]) -> str:
    role = message.get("role")
    return str(role.get("value") if isinstance(role, dict) else role)


def _contents(message: dict[str, Any]) -> list[dict[str, Any]]:
    contents = message.get("contents")
    return [c for c in contents if isinstance(c, dict)] if isinstance(contents, list) else []


def _approval_id(content: dict[str, Any]) -> str | None:
    value = content.get("id")
    if value is None and isinstance(content.get("function_call"), dict):
        value = content["function_call"].get("call_id")
    return None if value is None else f"approval:{value}"


def _opens(content: dict[str, Any]) -> str | None:
    """The link id a content opens (a call or an approval request), or None."""
    kind = content.get("type")
    if kind == _APPROVAL_REQUEST:
        return _approval_id(content)
    field = _CALLS.get(str(kind))
    value = content.get(field) if field else None
    return None if value is None else f"{kind}:{value}".replace("_call:", ":", 1)


def _answers(content: dict[str, Any]) -> str | None:
    """The link id a content answers (a result or an approval response), or None."""
    kind = content.get("type")
    if kind == _APPROVAL_RESPONSE:
        return _approval_id(content)
    field = _RESULTS.get(str(kind))
    value = content.get(field) if field else None
    return None if value is None else f"{kind}:{value}".replace("_result:", ":", 1)


def _approved_call(content: dict[str, Any]) -> str | None:
    """For an approval request, the call it asks about: the legacy framework answers the
    request by storing the call's result (it rewrites the approval response in place)."""
    call = content.get("function_call") if content.get("type") == _APPROVAL_REQUEST else None
    return _opens(call) if isinstance(call, dict) else None


def _is_reasoning_only(message: dict[str, Any]) -> bool:
    contents = _contents(message)
    return _role(message) == "assistant" and bool(contents) and all(c.get("type") == _REASONING for c in contents)


class MessageShape:
    """What the scripts keep per message: its tokens and whether it continues an earlier group."""

    __slots__ = ("continues", "tokens")

    def __init__(self, tokens: int, continues: bool) -> None:
        self.tokens = tokens
        self.continues = continues


def shape(
    message: dict[str, Any], payload: str, tokenizer: Tokenizer, *, previous: dict[str, Any] | None = None
) -> MessageShape:
    """The shape of one message. ``payload`` is its stored JSON; ``previous`` the message before it, if known.

    It continues an earlier group when it answers something it does not open itself (a
    tool result, an approval response), or when it opens calls right after reasoning that
    belongs to them (the Responses API replays reasoning and calls together).
    """
    contents = _contents(message)
    opened = {link for c in contents if (link := _opens(c))}
    answers = {link for c in contents if (link := _answers(c))}
    continues = bool(answers - opened) or (bool(opened) and previous is not None and _is_reasoning_only(previous))
    return MessageShape(max(1, tokenizer.count_tokens(payload)), continues)


def index_entry(shape: MessageShape) -> str:
    """The message's entry in the thread's index list: its tokens, negative when it continues a group."""
    return str(-shape.tokens if shape.continues else shape.tokens)


def repair(messages: Sequence[dict[str, Any]]) -> list[int | dict[str, Any]]:
    """What to hand the model instead of ``messages``: for each message, its index (unchanged),
    a reduced copy (some contents removed), or nothing (all its contents removed).

    Removed: results and approval responses whose call or request is not before them;
    function calls and approval requests left unanswered although the conversation went
    on past their group. A pending call at the end of the history is kept (its result may
    be what the next request is about), except one awaiting approval: only its approval
    request is kept. A reader cannot see the turn's input, so the next message may be the
    approval (the framework then turns the request back into the call, with its result
    after it) or anything else (the model then sees no call left unanswered).
    """
    # Most histories have no tool calls at all: one cheap pass decides.
    if not any(
        isinstance(content, dict) and content.get("type") in _LINKED
        for message in messages
        for content in message.get("contents") or ()
    ):
        return list(range(len(messages)))
    opened_at: dict[str, int] = {}
    answered: set[str] = set()
    drop: dict[int, set[int]] = {}
    for position, message in enumerate(messages):
        for slot, content in enumerate(_contents(message)):
            link = _answers(content)
            if link is None:
                continue
            if link in opened_at:
                answered.add(link)
            else:
                drop.setdefault(position, set()).add(slot)
        for content in _contents(message):
            if (link := _opens(content)) is not None:
                opened_at.setdefault(link, position)
    tail = _tail(messages)
    # The newest group's calls that await an approval (the legacy framework stores the call
    # beside its approval request): the request stands for them until the approval arrives.
    awaiting = {
        call
        for message in messages[tail:]
        for content in _contents(message)
        if (call := _approved_call(content)) is not None and call not in answered and _opens(content) not in answered
    }
    for position, message in enumerate(messages):
        for slot, content in enumerate(_contents(message)):
            link = _opens(content)
            if link is None or link in answered or _approved_call(content) in answered:
                continue
            kind = content.get("type")
            if position >= tail:
                if kind in _NEEDS_RESULT and link in awaiting:
                    drop.setdefault(position, set()).add(slot)
            elif kind in _NEEDS_RESULT or kind == _APPROVAL_REQUEST:
                drop.setdefault(position, set()).add(slot)
    kept: list[int | dict[str, Any]] = []
    for position, message in enumerate(messages):
        slots = drop.get(position)
        if not slots:
            kept.append(position)
            continue
        contents = [c for slot, c in enumerate(_contents(message)) if slot not in slots]
        if contents:
            kept.append({**message, "contents": contents})
    return kept


def _tail(messages: Sequence[dict[str, Any]]) -> int:
    """Where the newest group starts: the last message that is not only answers."""
    tail = len(messages)
    for position in range(len(messages) - 1, -1, -1):
        contents = _contents(messages[position])
        tail = position
        if not contents or not all(_answers(c) is not None for c in contents):
            break
    return tail


def open_group(messages: Sequence[dict[str, Any]]) -> int:
    """Where the newest group starts if it still awaits an answer (a function call without its
    result, an approval request without its response), else ``len(messages)``."""
    tail = _tail(messages)
    answered = {link for message in messages[tail:] for c in _contents(message) if (link := _answers(c))}
    for message in messages[tail:]:
        for content in _contents(message):
            link = _opens(content)
            kind = content.get("type")
            if link is None or link in answered or _approved_call(content) in answered:
                continue
            if kind in _NEEDS_RESULT or kind == _APPROVAL_REQUEST:
                return tail
    return len(messages)


def transcript_line(message: dict[str, Any]) -> str:
    """One message as a line of plain text for a summarizer: ``[role] text``, tools in brief."""
    parts: list[str] = []
    for content in _contents(message):
        kind = content.get("type")
        if kind == "text":
            parts.append(str(content.get("text", "")))
        elif kind in _CALLS:
            arguments = content.get("arguments")
            text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
            parts.append(f"called {content.get('name') or kind}({text})")
        elif kind in _RESULTS:
            result = content.get("result", content.get("output", content.get("outputs")))
            text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str)
            parts.append(f"result: {text}")
        elif kind == _APPROVAL_RESPONSE:
            parts.append(f"approval: {'approved' if content.get('approved') else 'rejected'}")
    return f"[{_role(message)}] " + " ".join(p for p in parts if p)
