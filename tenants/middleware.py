"""Finding the tenant of a request (HTTP) or a connection (websocket)."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import logout
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from tenants.context import tenant_context
from tenants.directory import public_tenant_by_slug
from tenants.models import Tenant
from tenants.selectors import dashboard_tenant_for

# Public routes carry the business's slug; the dashboard uses the membership.
# /voice/incoming, /voice/status and /voice/sms carry none: the voice app finds
# the business by the called number.
PUBLIC_PATH = re.compile(
    r"^/(?:b|api/b|voice(?!/(?:incoming|status|sms)/?$))/(?P<slug>[^/]+)(?:/|$)"
)
WEBSOCKET_PATH = re.compile(r"^/ws/chat/(?P<slug>[^/]+)/?$")
DASHBOARD_PREFIX = "/dashboard/"
SESSION_TENANT_KEY = "active_tenant_id"


def unavailable_response(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    detail = f"{tenant.name} is not taking bookings online at the moment."
    if request.path_info.startswith("/api/"):
        return JsonResponse({"error": "business_unavailable", "detail": detail}, status=403)
    return render(
        request, "tenants/unavailable.html", {"tenant": tenant, "detail": detail}, status=403
    )


class TenantMiddleware:
    """Sets ``request.tenant`` and makes it the tenant in context for the view."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            tenant = self._resolve(request)
        except Http404:
            if request.path_info.startswith("/api/"):
                return JsonResponse(
                    {"error": "not_found", "detail": "No business with that address."},
                    status=404,
                )
            raise
        request.tenant = tenant  # type: ignore[attr-defined]
        if tenant is None:
            return self.get_response(request)
        # Voice webhooks answer in TwiML, so they report a paused business themselves.
        if not tenant.is_active and not request.path_info.startswith("/voice/"):
            return unavailable_response(request, tenant)
        with tenant_context(tenant):
            return self.get_response(request)

    def _resolve(self, request: HttpRequest) -> Tenant | None:
        path = request.path_info
        match = PUBLIC_PATH.match(path)
        if match:
            tenant = public_tenant_by_slug(match["slug"])
            if tenant is None:
                raise Http404("No business with that address.")
            return tenant
        if path.startswith(DASHBOARD_PREFIX) and request.user.is_authenticated:
            return dashboard_tenant_for(request.user, request.session.get(SESSION_TENANT_KEY))
        return None


class SessionExpiryMiddleware:
    """Idle and absolute session limits, enforced on the server.

    The cookie's own age is the absolute limit from login; this also logs out a
    session idle longer than SESSION_IDLE_SECONDS or older than its login stamp
    allows (a stolen cookie does not live forever by being used).
    """

    LOGIN_AT = "_login_at"
    SEEN_AT = "_seen_at"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = int(time.time())
            session = request.session
            login_at = session.get(self.LOGIN_AT, now)
            seen_at = session.get(self.SEEN_AT, now)
            if (now - seen_at > settings.SESSION_IDLE_SECONDS
                    or now - login_at > settings.SESSION_COOKIE_AGE):
                logout(request)
            else:
                session.setdefault(self.LOGIN_AT, login_at)
                # Write at most once a minute: every write is a session save.
                if now - seen_at >= 60 or self.SEEN_AT not in session:
                    session[self.SEEN_AT] = now
        return self.get_response(request)


Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
                   Awaitable[None]]


class TenantWebsocketMiddleware:
    """The websocket twin of TenantMiddleware: ``scope["tenant"]`` and the context.

    URLRouter kwargs are only visible inside the consumer, so the slug is read
    from the path here.
    """

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        match = WEBSOCKET_PATH.match(scope.get("path", ""))
        tenant = (
            await database_sync_to_async(public_tenant_by_slug)(match["slug"]) if match else None
        )
        if tenant is None:
            # Refuse the handshake: no such business.
            message = await receive()
            if message.get("type") == "websocket.connect":
                await send({"type": "websocket.close", "code": 4404})
            return
        scope = dict(scope, tenant=tenant)
        with tenant_context(tenant):
            await self.inner(scope, receive, send)
