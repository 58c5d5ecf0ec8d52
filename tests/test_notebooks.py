"""The notebooks under notebooks/ run top to bottom, offline, with no edits (nbclient + ipykernel)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import redis
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def execute(name: str, cwd: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a notebook in a kernel of this environment and return everything its cells printed."""
    for variable in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("REDIS_URL", redis_url)
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    # cwd: a directory with no .env, so no real key is picked up.
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream"
    )


def assert_six_examples_ran(out: str, redis_url: str, restored: str) -> None:
    """Each example ran twice (on its own, then in run_all_examples) and its assertions held."""
    assert f"Redis: {redis_url}" in out
    assert "Model: OFFLINE" in out
    assert out.count("📊 Total messages in Redis: 4") == 2
    assert out.count("Agent: You told me that your name is Alice and you love pizza.") == 2
    assert out.count("📊 Messages stored for user alice_123: 8") == 2
    assert out.count("📊 Total messages after resuming: 8") == 2
    assert out.count(f"✓ Restored {restored} ID: serialization_test") == 2
    assert out.count("Agent: Yes, you said you are testing serialization.") == 2
    assert out.count("📊 Final message count: 3") == 2
    # Example 6: the first turn is remembered through the summary, and the transcript is whole.
    assert out.count("📝 Summary kept in Redis: Summary of the earlier conversation:") == 2
    assert out.count("📊 The model is sent 7 messages (the summary and the newest 6)") == 2
    assert out.count("Agent: You told me that your name is Bob and you love sushi.") == 2
    assert out.count("📊 The transcript in Redis holds all 16 messages") == 2
    assert "✅ All examples completed successfully!" in out
    with redis.Redis.from_url(redis_url) as client:
        assert client.keys("*") == []


@pytest.mark.legacy
def test_chat_message_store_notebook_runs_offline(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = execute("redis_chat_message_store.ipynb", tmp_path, redis_url, monkeypatch)
    assert_six_examples_ran(out, redis_url, "thread")


@pytest.mark.current
def test_history_provider_notebook_runs_offline(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = execute("redis_history_provider.ipynb", tmp_path, redis_url, monkeypatch)
    assert_six_examples_ran(out, redis_url, "session")
    # Example 7: the workflow waited in Redis for the approval and finished with the draft made before.
    draft = "Dear customer, we are refunding 40 EUR for order 1017 because the kettle arrived broken."
    assert out.count(f"Draft: {draft}") == 2
    assert out.count(" waits for 1 request(s)") == 2
    assert out.count(f"Result: Approved: {draft}") == 2
