"""Which Agent Framework generation is installed, and its message class.

The legacy generation (agent-framework-core 1.0.0b251223) calls the message class
``ChatMessage``; the current one (1.x) calls it ``Message``. (The legacy package also
exports an unrelated workflow ``Message``, so the test is for ``ChatMessage``.)
Everything else in this package works on ``to_dict()`` / ``from_dict()``, which both
generations share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import agent_framework

if TYPE_CHECKING:
    # Type-check against the current generation; the legacy class has the same surface we use.
    from agent_framework import Message as FrameworkMessage

    GENERATION: Literal["legacy", "current"]
elif hasattr(agent_framework, "ChatMessage"):
    from agent_framework import ChatMessage as FrameworkMessage

    GENERATION = "legacy"
else:
    from agent_framework import Message as FrameworkMessage

    GENERATION = "current"

__all__ = ["GENERATION", "FrameworkMessage"]
