"""Django's ASGI handler, with less hand-over work per request.

Every middleware of this project is synchronous, and so are the views.

* The chain runs in one call. Django's own ASGI handler builds the chain for
  async: the request goes to a worker thread for the middleware, back to the
  event loop (``async_to_sync``) for the innermost handler and to the thread
  again for the view. Here the chain is built for sync, as under WSGI, and runs
  in a single ``sync_to_async`` call.
* The request is started, built and answered in that same call. Django's
  handler sends ``request_started`` in a hop of its own, and races the view
  against a task listening for the client's disconnect, which can only stop
  async views: with sync views the thread runs to the end either way.
  ``handle`` below is Django 5.2's, less those two.
* Worker threads are reused. Django gives each request a thread of its own
  (``ThreadSensitiveContext``), so the view and ``response.close()`` (which
  closes the request's database connections) share one thread. Starting and
  joining a thread per request, and building its database wrappers again, is
  avoidable: a request borrows an idle single-thread executor and returns it,
  still one request per thread at a time (asgiref's ``ThreadSensitiveContext``
  takes a caller-owned executor for this).

Measured with bench.booking_http: see bench/README.md.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix

# Idle request threads kept for the next requests; more are started under a
# burst and stopped when they come back to a full shelf.
MAX_IDLE_THREADS = 32


class _IdleExecutors:
    """Single-thread executors between requests (used from the event loop's thread only)."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._idle: list[ThreadPoolExecutor] = []

    def borrow(self) -> ThreadPoolExecutor:
        if self._idle:
            return self._idle.pop()
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        if len(self._idle) < self.keep:
            self._idle.append(executor)
        else:
            executor.shutdown(wait=False)


class SyncChainASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        self._executors = _IdleExecutors(MAX_IDLE_THREADS)
        super().__init__()

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self._executors.borrow()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self._executors.give_back(executor)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        try:
            response = await sync_to_async(self._respond, thread_sensitive=True)(
                scope, body_file
            )
            try:
                await self.send_response(response, send)
            finally:
                # request_finished: the request's connections are closed in its thread.
                await sync_to_async(response.close, thread_sensitive=True)()
        finally:
            body_file.close()

    def _respond(self, scope: dict[str, Any], body_file: Any) -> HttpResponseBase:
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            assert error_response is not None
            return error_response
        response = self.get_response(request)
        response._handler_class = self.__class__  # type: ignore[attr-defined]
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        return response
