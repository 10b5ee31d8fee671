"""Request ids with an access log line, and the Cross-Origin-Resource-Policy header."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from smartscheduler.logging import request_id_var

REQUEST_ID_HEADER = "X-Request-ID"
# An id from the load balancer or a client is kept only if it could not smuggle
# anything into a log line or a header: letters, digits and a few separators.
WELL_FORMED_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")
# Probes arrive every few seconds; their lines would drown the rest.
QUIET_PATHS = frozenset({"/healthz", "/readyz"})

access_log = logging.getLogger("smartscheduler.access")


def request_id_for(request: HttpRequest) -> str:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    if WELL_FORMED_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Gives each request an id, logs it on every line, and answers with it.

    The access line names the URL pattern, not the path: paths carry booking
    references and manage-link tokens, which do not belong in logs.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_for(request)
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        started = time.monotonic()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            self._log(request, response, started)
            return response
        finally:
            request_id_var.reset(token)

    @staticmethod
    def _log(request: HttpRequest, response: HttpResponse, started: float) -> None:
        level = logging.DEBUG if request.path_info in QUIET_PATHS else logging.INFO
        if not access_log.isEnabledFor(level):
            return
        match = getattr(request, "resolver_match", None)
        route = "/" + match.route if match else None
        tenant = getattr(request, "tenant", None)
        access_log.log(level, "%s %s %s", request.method, route or "(no route)",
                       response.status_code, extra={
                           "method": request.method,
                           "route": route,
                           "view": match.view_name if match else None,
                           "status": response.status_code,
                           "duration_ms": round((time.monotonic() - started) * 1000, 1),
                           # The view has left the tenant's context by now: name it here.
                           "tenant_id": str(tenant.pk) if tenant is not None else None,
                       })


class ResourcePolicyMiddleware:
    """Cross-Origin-Resource-Policy on every response that has not chosen its own.

    Keeps this site's pages, JSON and static files from being read into other
    sites' pages; the widget script and the framed chat page opt out in their views.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy: str = getattr(settings, "CROSS_ORIGIN_RESOURCE_POLICY", "") or ""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.policy:
            response.headers.setdefault("Cross-Origin-Resource-Policy", self.policy)
        return response
