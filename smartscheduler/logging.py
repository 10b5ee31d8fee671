"""Structured logs: every record says which request and which business it belongs to.

The request id lives in a context variable set by ``RequestIdMiddleware``; the
tenant is the one in context (``tenants.context``), so records from views,
websocket consumers and background tasks all carry it without each call site
passing it. Log messages name rows by id; customers' names, phone numbers and
email addresses stay out of the logs.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

UNSET = "-"


def _tenant_id_in_context() -> str | None:
    # Imported late: logging is configured before the apps are loaded.
    from tenants.context import current_tenant_or_none

    tenant = current_tenant_or_none()
    return str(tenant.pk) if tenant is not None else None


class RequestContextFilter(logging.Filter):
    """Adds ``request_id`` and ``tenant_id`` to every record (``-`` outside a request/tenant).

    A value given explicitly (``extra={"tenant_id": ...}``) wins: the access log
    line is written after the view has left the tenant's context.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if request is not None:
            self._describe_request(record, request)
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get() or UNSET
        if getattr(record, "tenant_id", None) is None:
            try:
                tenant_id = _tenant_id_in_context()
            except Exception:  # noqa: BLE001 - a log line must never fail for its context
                tenant_id = None
            record.tenant_id = tenant_id or UNSET
        return True

    @staticmethod
    def _describe_request(record: logging.LogRecord, request: Any) -> None:
        """Django's own request records ("Not Found: /path") are written after the
        middleware has finished, so the id comes from the request; and the path,
        which may hold a manage-link token, is replaced by the URL pattern."""
        if getattr(record, "request_id", None) is None:
            record.request_id = getattr(request, "request_id", None)
        if getattr(record, "tenant_id", None) is None:
            tenant = getattr(request, "tenant", None)
            record.tenant_id = str(tenant.pk) if tenant is not None else None
        match = getattr(request, "resolver_match", None)
        path = getattr(request, "path", None)
        if match is not None and isinstance(record.args, tuple) and path in record.args:
            route = "/" + match.route
            record.args = tuple(route if arg == path else arg for arg in record.args)


class JsonLinesFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, message, request and tenant ids.

    Fields given with ``extra=`` (method, route, status...) are added as keys;
    an exception's traceback goes into ``exc_info`` for the operators, never to
    a client.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", ["levelname", "name", "message", "request_id", "tenant_id"])
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", "time")
        # Django adds the request object to its records; its repr is the full path.
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "request"])
        super().__init__(*args, **kwargs)
