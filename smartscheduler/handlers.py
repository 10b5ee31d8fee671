"""Django's ASGI handler with the middleware chain run synchronously, in one call.

Every middleware of this project is synchronous, and so are the views. Django's
own ASGI handler builds the chain for async: the request goes to a worker
thread for the middleware, back to the event loop (``async_to_sync``) for the
innermost handler, and to the thread again for the view, two extra hand-offs
between threads per request. Here the chain is built for sync, as under WSGI,
and runs in a single ``sync_to_async`` call (thread-sensitive, so the view and
``response.close()`` share the request's thread and its database connections).
Measured with bench.booking_http: see bench/README.md.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase


class SyncChainASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)
