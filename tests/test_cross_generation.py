"""One thread, both framework generations, one redis-server.

The legacy side runs as a subprocess in the legacy environment (``AFRS_LEGACY_PYTHON``,
exported by ``./scripts/test``; else ``.venv-legacy`` of this checkout) through
``tests/legacy_worker.py``; the current side runs in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .scripted import ScriptedChatClient, make_agent
from .test_provider import tools

pytestmark = pytest.mark.current

ROOT = Path(__file__).resolve().parent.parent


def legacy_python() -> str:
    configured = os.environ.get("AFRS_LEGACY_PYTHON")
    if configured:
        return configured
    local = ROOT / ".venv-legacy" / "bin" / "python"
    if local.exists():
        return str(local)
    pytest.skip("no legacy environment: run ./scripts/test, or set AFRS_LEGACY_PYTHON")


def run_legacy(redis_url: str, thread_id: str, turns: list[str]) -> dict[str, Any]:
    request = json.dumps({"redis_url": redis_url, "thread_id": thread_id, "turns": turns})
    done = subprocess.run(
        [legacy_python(), "-m", "tests.legacy_worker", request],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["generation"] == "legacy"
    return result


async def test_a_legacy_thread_continues_as_a_session_and_back(redis_url: str) -> None:
    from agent_framework_redis_store import RedisChatHistoryProvider

    written = run_legacy(redis_url, "crossgen", ["My name is Alice.", 'call add {"a": 2, "b": 3}'])
    assert written["replies"] == ["seen 1: My name is Alice.", "tool call_2 returned 5"]

    async with RedisChatHistoryProvider(redis_url) as provider:
        client = ScriptedChatClient()
        agent = make_agent(client, context_providers=[provider], tools=tools())
        answer = await agent.run("What is my name?", session=agent.create_session(session_id="crossgen"))
    assert answer.text == 'seen 3: My name is Alice. | call add {"a": 2, "b": 3} | What is my name?'
    # The legacy tool call and its result reached the 1.x model as real contents.
    sent = client.recorder.requests[0]
    call = next(c for m in sent for c in m.contents if c.type == "function_call")
    result = next(c for m in sent for c in m.contents if c.type == "function_result")
    assert (call.name, call.arguments, call.call_id, result.call_id, str(result.result)) == (
        "add",
        {"a": 2, "b": 3},
        "call_2",
        "call_2",
        "5",
    )

    extended = run_legacy(redis_url, "crossgen", ["And now?"])
    assert extended["replies"] == [
        'seen 4: My name is Alice. | call add {"a": 2, "b": 3} | What is my name? | And now?'
    ]
    assert [entry[0] for entry in extended["stored"]] == [
        *["user", "assistant"],
        *["user", "assistant", "tool", "assistant"],
        *["user", "assistant"] * 2,
    ]


async def test_a_session_with_tools_and_approval_continues_as_a_legacy_thread(redis_url: str) -> None:
    from agent_framework import Message

    from agent_framework_redis_store import RedisChatHistoryProvider

    async with RedisChatHistoryProvider(redis_url) as provider:
        agent = make_agent(ScriptedChatClient(), context_providers=[provider], tools=tools())
        session = agent.create_session(session_id="from_current")
        pending = await agent.run('call transfer {"amount": 7}', session=session)
        approval = Message(role="user", contents=[pending.user_input_requests[0].to_function_approval_response(True)])
        assert (await agent.run(approval, session=session)).text == "tool call_1 returned moved 7"

    extended = run_legacy(redis_url, "from_current", ["still there?"])
    assert extended["replies"] == ['seen 2: call transfer {"amount": 7} | still there?']
    assert extended["stored"][:5] == [
        ["user", ["text"], 'call transfer {"amount": 7}'],
        ["assistant", ["function_call", "function_approval_request"], ""],
        ["user", ["function_approval_response"], ""],
        ["tool", ["function_result"], ""],
        ["assistant", ["text"], "tool call_1 returned moved 7"],
    ]

    async with RedisChatHistoryProvider(redis_url) as provider:
        agent = make_agent(ScriptedChatClient(), context_providers=[provider], tools=tools())
        answer = await agent.run("last one", session=agent.create_session(session_id="from_current"))
        assert answer.text == 'seen 3: call transfer {"amount": 7} | still there? | last one'
        assert await provider.store_for("from_current").count() == 9
