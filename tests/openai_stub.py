"""A local OpenAI-compatible HTTP server for tests of the real ``openai`` SDK path.

It serves ``POST /v1/chat/completions`` (plain and streamed) and ``POST /v1/responses``
(plain) on 127.0.0.1, answers like ``tests/scripted.py`` (``"seen N: <user texts>"``, a
tool call for ``"call <tool> <json args>"``, parallel calls for ``"calls [[tool, args], ...]"``),
records every request body, and answers 401 when neither the bearer token nor an
Azure-style ``api-key`` header is ``api_key``.

It is strict like the real API about tool calls: a request whose history holds a tool
result without its call, or a call without its results followed by anything else, is
answered with HTTP 400 and the real API's error message (and kept in ``rejections``).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


def _text_parts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [part.get("text", "") for part in content if isinstance(part, dict) and part.get("text")]
    return []


def _chat_user_texts(body: dict[str, Any]) -> tuple[list[str], dict[str, Any] | None]:
    """User texts of a chat-completions request, and the trailing tool result if any."""
    messages = body.get("messages", [])
    users = [t for m in messages if m.get("role") == "user" for t in _text_parts(m.get("content"))]
    last = messages[-1] if messages else {}
    return users, last if last.get("role") == "tool" else None


def _responses_user_texts(body: dict[str, Any]) -> tuple[list[str], dict[str, Any] | None]:
    items = body.get("input", [])
    if isinstance(items, str):
        return [items], None
    users = [t for i in items if i.get("role") == "user" for t in _text_parts(i.get("content"))]
    last = items[-1] if items else {}
    return users, last if last.get("type") == "function_call_output" else None


def _reply(users: list[str], tool_result: dict[str, Any] | None) -> dict[str, Any]:
    if tool_result is not None:
        return {"text": f"tool {tool_result.get('call_id') or tool_result.get('tool_call_id')} returned "
                f"{tool_result.get('output') or tool_result.get('content')}"}  # fmt: skip
    newest = users[-1] if users else ""
    if newest.startswith("call "):
        _, name, *rest = newest.split(" ", 2)
        return {"calls": [(name, rest[0] if rest else "{}")]}
    if newest.startswith("calls "):
        return {"calls": [(name, json.dumps(args)) for name, args in json.loads(newest.removeprefix("calls "))]}
    return {"text": f"seen {len(users)}: " + " | ".join(users)}


def _call_id(number: int, position: int, count: int) -> str:
    return f"call_{number}" if count == 1 else f"call_{number}_{position}"


def chat_violation(messages: list[dict[str, Any]]) -> str | None:
    """What the real Chat Completions API rejects about tool calls in ``messages``, or None."""
    pending: set[str] | None = None
    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            if pending is None:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                    f"with 'tool_calls'. (messages.[{i}].role)"
                )
            call = message.get("tool_call_id")
            if call not in pending:
                return f"Invalid parameter: 'tool_call_id' of '{call}' not found in 'tool_calls' of previous message."
            pending.discard(call)
            continue
        if pending:
            missing = ", ".join(sorted(pending))
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                f"'tool_call_id'. The following tool_call_ids did not have response messages: {missing}"
            )
        pending = {call["id"] for call in message.get("tool_calls") or []} if role == "assistant" else None
        pending = pending or None
    if pending:
        return f"The following tool_call_ids did not have response messages: {', '.join(sorted(pending))}"
    return None


def responses_violation(body: dict[str, Any]) -> str | None:
    """What the real Responses API rejects about function calls in ``body['input']``, or None."""
    items = body.get("input")
    if not isinstance(items, list) or body.get("previous_response_id") or body.get("conversation"):
        return None  # the server holds the earlier calls
    calls: set[str] = set()
    answered: set[str] = set()
    for item in items:
        kind = item.get("type")
        if kind == "function_call":
            calls.add(item.get("call_id"))
        elif kind == "function_call_output":
            if item.get("call_id") not in calls:
                return f"No tool call found for function call output with call_id {item.get('call_id')}."
            answered.add(item.get("call_id"))
    # A call still unanswered is fine only at the end (its output is what this request is about).
    if calls - answered and items and items[-1].get("type") not in {"function_call", "function_call_output"}:
        return f"No tool output found for function call {sorted(calls - answered)[0]}."
    return None


class OpenAIStub:
    """Start with ``with OpenAIStub() as stub:``; point the SDK at ``stub.base_url``."""

    def __init__(self, api_key: str = "test-key", model: str = "stub-model") -> None:
        self.api_key = api_key
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.rejections: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def user_texts(self, index: int) -> list[str]:
        """The user texts the ``index``-th request carried, oldest first."""
        body = self.requests[index]
        return (_chat_user_texts(body) if "messages" in body else _responses_user_texts(body))[0]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def _send_json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                # Azure OpenAI sends the key as `api-key` and the api-version in the query string.
                authorized = (
                    self.headers.get("Authorization") == f"Bearer {stub.api_key}"
                    or self.headers.get("api-key") == stub.api_key
                )
                path = self.path.split("?", 1)[0]
                if not authorized:
                    self._send_json(
                        401,
                        {
                            "error": {
                                "message": "Incorrect API key provided.",
                                "type": "invalid_request_error",
                                "param": None,
                                "code": "invalid_api_key",
                            }
                        },
                    )
                    return
                with stub._lock:
                    stub.requests.append(body)
                    number = len(stub.requests)
                violation = (
                    chat_violation(body.get("messages", []))
                    if path.endswith("/chat/completions")
                    else responses_violation(body)
                )
                if violation is not None:
                    with stub._lock:
                        stub.rejections.append(violation)
                    error = {"message": violation, "type": "invalid_request_error", "param": None, "code": None}
                    self._send_json(400, {"error": error})
                    return
                if path.endswith("/chat/completions"):
                    self._chat(body, number)
                elif path.endswith("/responses"):
                    self._responses(body, number)
                else:
                    self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

            def _chat(self, body: dict[str, Any], number: int) -> None:
                reply = _reply(*_chat_user_texts(body))
                if "calls" in reply:
                    calls = reply["calls"]
                    message: dict[str, Any] = {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": _call_id(number, i, len(calls)),
                                "type": "function",
                                "function": {"name": name, "arguments": args},
                            }
                            for i, (name, args) in enumerate(calls)
                        ],
                    }
                    finish = "tool_calls"
                else:
                    message = {"role": "assistant", "content": reply["text"]}
                    finish = "stop"
                base = {"id": f"chatcmpl-{number}", "created": int(time.time()), "model": stub.model}
                usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
                if not body.get("stream"):
                    choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
                    self._send_json(200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                deltas: list[dict[str, Any]]
                if "calls" in reply:
                    deltas = [
                        {"role": "assistant", "tool_calls": [{"index": i, **call}]}
                        for i, call in enumerate(message["tool_calls"])
                    ]
                else:
                    words = reply["text"].split(" ")
                    deltas = [{"role": "assistant", "content": ""}] + [
                        {"content": w if i == 0 else " " + w} for i, w in enumerate(words)
                    ]
                chunks = [{"index": 0, "delta": d, "finish_reason": None} for d in deltas]
                chunks.append({"index": 0, "delta": {}, "finish_reason": finish})
                for choice in chunks:
                    event = {**base, "object": "chat.completion.chunk", "choices": [choice]}
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                final = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
                self.wfile.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
                self.wfile.flush()

            def _responses(self, body: dict[str, Any], number: int) -> None:
                reply = _reply(*_responses_user_texts(body))
                outputs: list[dict[str, Any]]
                if "calls" in reply:
                    calls = reply["calls"]
                    outputs = [
                        {
                            "type": "function_call",
                            "id": f"fc_{number}_{i}",
                            "call_id": _call_id(number, i, len(calls)),
                            "name": name,
                            "arguments": args,
                            "status": "completed",
                        }
                        for i, (name, args) in enumerate(calls)
                    ]
                else:
                    outputs = [
                        {
                            "type": "message",
                            "id": f"msg_{number}",
                            "status": "completed",
                            "role": "assistant",
                            "content": [{"type": "output_text", "text": reply["text"], "annotations": []}],
                        }
                    ]
                self._send_json(
                    200,
                    {
                        "id": f"resp_{number}",
                        "object": "response",
                        "created_at": int(time.time()),
                        "status": "completed",
                        "model": stub.model,
                        "output": outputs,
                        "parallel_tool_calls": True,
                        "tool_choice": "auto",
                        "tools": [],
                        "usage": {
                            "input_tokens": 10,
                            "input_tokens_details": {"cached_tokens": 0},
                            "output_tokens": 5,
                            "output_tokens_details": {"reasoning_tokens": 0},
                            "total_tokens": 15,
                        },
                    },
                )

        return Handler
