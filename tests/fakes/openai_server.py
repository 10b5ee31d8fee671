"""A fake OpenAI API: a real HTTP server on loopback speaking Chat Completions.

The openai client talks through its own HTTP stack, so the fake sits at the
wire (``OPENAI_BASE_URL``), not inside the client. Each POST to
``/v1/chat/completions`` takes the next scripted step:

    with FakeOpenAI() as fake:
        fake.tool_calls(("check_availability", {"service": "Cleaning", ...}))
        fake.step(lambda request: tool_calls_response(...))   # computed from the request
        fake.text("You're booked!")
        fake.error(500)
        fake.hang(5)   # answers after 5 s (or when the server stops), too late

Every request body is kept in ``fake.requests`` (and headers in ``fake.headers``).
A request with no step left gets a 500, so a test never hangs on a missing step.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Step = Callable[[dict[str, Any]], "Reply"]
_ids = itertools.count(1)


class Reply:
    def __init__(self, status: int, body: dict[str, Any], delay: float = 0.0) -> None:
        self.status, self.body, self.delay = status, body, delay


def completion(message: dict[str, Any], *, model: str = "gpt-4o",
               finish_reason: str = "stop") -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{next(_ids)}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason,
                     "logprobs": None}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def text_response(text: str) -> Reply:
    return Reply(200, completion({"role": "assistant", "content": text}))


def tool_calls_response(*calls: tuple[str, dict[str, Any] | str]) -> Reply:
    tool_calls = [
        {
            "id": f"call_{next(_ids)}",
            "type": "function",
            "function": {
                "name": name,
                "arguments": args if isinstance(args, str) else json.dumps(args),
            },
        }
        for name, args in calls
    ]
    return Reply(200, completion({"role": "assistant", "content": None,
                                  "tool_calls": tool_calls}, finish_reason="tool_calls"))


def tool_results(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool results the client sent back in this request, oldest first."""
    return [json.loads(m["content"]) for m in request["messages"] if m.get("role") == "tool"]


class FakeOpenAI:
    def __init__(self) -> None:
        self.steps: deque[Step] = deque()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._release = threading.Event()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.requests.append(body)
                    fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                    step = fake.steps.popleft() if fake.steps else None
                if self.path.rstrip("/") != "/v1/chat/completions":
                    reply = Reply(404, {"error": {"message": "not found", "type": "invalid"}})
                elif step is None:
                    reply = Reply(500, {"error": {"message": "no scripted step left",
                                                  "type": "server_error"}})
                else:
                    reply = step(body)
                if reply.delay:
                    # Wait as a hung upstream would; stopping the server ends the wait.
                    fake._release.wait(reply.delay)
                payload = json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout): nothing to answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    # --- scripting ---

    def step(self, step: Step) -> FakeOpenAI:
        self.steps.append(step)
        return self

    def text(self, text: str) -> FakeOpenAI:
        return self.step(lambda request: text_response(text))

    def tool_calls(self, *calls: tuple[str, dict[str, Any] | str]) -> FakeOpenAI:
        return self.step(lambda request: tool_calls_response(*calls))

    def error(self, status: int = 500, message: str = "upstream failure") -> FakeOpenAI:
        return self.step(lambda request: Reply(
            status, {"error": {"message": message, "type": "server_error"}}
        ))

    def hang(self, seconds: float) -> FakeOpenAI:
        return self.step(lambda request: Reply(200, text_response("too late").body,
                                               delay=seconds))

    # --- lifecycle ---

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
