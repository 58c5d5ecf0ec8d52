"""Which Agent Framework generation is installed, and its message class, loaded on first use.

The legacy generation (agent-framework-core 1.0.0b251223) calls the message class
``ChatMessage``; the current one (1.x) calls it ``Message``. (The legacy package also
exports an unrelated workflow ``Message``, so the test is for ``ChatMessage``.)
Everything else in this package works on ``to_dict()`` / ``from_dict()``, which both
generations share.

The framework is imported only when a message is first encoded or decoded: importing the
legacy generation takes seconds, and the operator CLI's registry commands never need it.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    # Type-check against the current generation; the legacy class has the same surface we use.
    from agent_framework import Message as FrameworkMessage

__all__ = ["FrameworkMessage", "framework_message_class", "generation"]


@cache
def _load() -> tuple[Literal["legacy", "current"], type[FrameworkMessage]]:
    import agent_framework

    if hasattr(agent_framework, "ChatMessage"):
        return "legacy", agent_framework.ChatMessage  # type: ignore[attr-defined]
    return "current", agent_framework.Message


def generation() -> Literal["legacy", "current"]:
    """``"legacy"`` (agent-framework-core 1.0.0b251223) or ``"current"`` (1.x)."""
    return _load()[0]


def framework_message_class() -> type[FrameworkMessage]:
    """The installed generation's message class (``ChatMessage`` or ``Message``)."""
    return _load()[1]
