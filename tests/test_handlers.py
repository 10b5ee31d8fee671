"""The ASGI handler (smartscheduler.handlers): one thread hand-off per request, threads reused.

Driven as daphne drives it, through the ASGI protocol; the browser and
scale-out suites run the same handler behind real daphne processes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core.signals import request_finished, request_started

from smartscheduler.handlers import MAX_IDLE_THREADS, SyncChainASGIHandler

pytestmark = pytest.mark.django_db(transaction=True)


def http_scope(path: str, method: str = "GET", query: bytes = b"") -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
        "query_string": query, "root_path": "",
        "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }


async def call(handler: SyncChainASGIHandler, scope: dict[str, Any],
               body: bytes = b"") -> tuple[int, dict[bytes, bytes], bytes]:
    app = ApplicationCommunicator(handler, scope)
    await app.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await app.receive_output(timeout=10)
    content = b""
    while True:
        message = await app.receive_output(timeout=10)
        content += message.get("body", b"")
        if not message.get("more_body"):
            break
    await app.wait(timeout=10)
    return start["status"], dict(start["headers"]), content


@pytest.fixture
def signal_threads() -> Iterator[list[tuple[str, str]]]:
    """(signal, thread name) for every request_started and request_finished."""
    seen: list[tuple[str, str]] = []

    def started(**kwargs: Any) -> None:
        seen.append(("started", threading.current_thread().name))

    def finished(**kwargs: Any) -> None:
        seen.append(("finished", threading.current_thread().name))

    request_started.connect(started, weak=False)
    request_finished.connect(finished, weak=False)
    yield seen
    request_started.disconnect(started)
    request_finished.disconnect(finished)


async def test_a_request_starts_and_finishes_in_one_reused_request_thread(
    signal_threads: list[tuple[str, str]],
) -> None:
    handler = SyncChainASGIHandler()
    for _ in range(3):
        status, headers, _ = await call(handler, http_scope("/healthz"))
        assert status == 200 and b"X-Request-ID" in headers
    kinds = [kind for kind, _ in signal_threads]
    assert kinds == ["started", "finished"] * 3
    threads = {name for _, name in signal_threads}
    # One request at a time: the same idle thread serves all three.
    assert len(threads) == 1 and threads.pop().startswith("request")


async def test_a_page_is_rendered_through_the_whole_middleware_chain() -> None:
    status, headers, content = await call(SyncChainASGIHandler(), http_scope("/"))
    assert status == 200
    assert b"Content-Security-Policy" in headers and b"X-Request-ID" in headers
    assert b"Smart Scheduler" in content


async def test_json_body_reaches_the_api_and_a_bad_one_gets_a_reason() -> None:
    status, _, content = await call(
        SyncChainASGIHandler(),
        http_scope("/api/b/no-such-business/appointments", method="POST"),
        body=b'{"service": 1}',
    )
    assert status == 404 and b"not_found" in content


async def test_a_client_gone_before_its_body_arrived_gets_no_answer_and_breaks_nothing(
    signal_threads: list[tuple[str, str]],
) -> None:
    handler = SyncChainASGIHandler()
    app = ApplicationCommunicator(handler, http_scope("/api/b/x/appointments", "POST"))
    await app.send_input({"type": "http.request", "body": b"{", "more_body": True})
    await app.send_input({"type": "http.disconnect"})
    await app.wait(timeout=10)
    assert await app.receive_nothing()
    assert signal_threads == []
    status, _, _ = await call(handler, http_scope("/healthz"))
    assert status == 200


async def test_idle_request_threads_are_bounded() -> None:
    handler = SyncChainASGIHandler()
    borrowed = [handler._executors.borrow() for _ in range(MAX_IDLE_THREADS + 5)]
    for executor in borrowed:
        handler._executors.give_back(executor)
    assert len(handler._executors._idle) == MAX_IDLE_THREADS
    assert sum(executor._shutdown for executor in borrowed) == 5
