"""The embeddable widget (``/widget.js``) and the chat page it frames (``/b/<slug>/chat/``)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET

from agent.engine import chat_settings_get
from agent.widget import frame_ancestor_sources
from billing.entitlements import has_feature
from billing.plans import CHAT
from tenants.context import current_tenant

WIDGET_MAX_AGE = 3600


@lru_cache(maxsize=1)
def _widget_source() -> tuple[bytes, str]:
    found = finders.find("js/widget.js")
    path = Path(found if isinstance(found, str) else settings.STATIC_ROOT / "js" / "widget.js")
    body = path.read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@require_GET
def widget_js(request: HttpRequest) -> HttpResponse:
    """The loader businesses put on their sites; the same for every business."""
    if settings.DEBUG:
        _widget_source.cache_clear()  # pick up edits while developing
    body, etag = _widget_source()
    if request.headers.get("If-None-Match") == etag:
        response: HttpResponse = HttpResponseNotModified()
    else:
        response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["ETag"] = etag
    patch_cache_control(response, public=True, max_age=WIDGET_MAX_AGE)
    # Loaded by other sites' pages: a plain script tag needs no CORS, but say so.
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


def _chat_page_policy(request: HttpRequest, response: HttpResponse, domains: list[str]) -> None:
    """Adjust the site-wide CSP (django-csp, settings.CONTENT_SECURITY_POLICY) for this page.

    The page talks to its websocket and may be framed by the owner's sites. The
    attributes are the ones django-csp's ``csp_update``/``csp_replace``
    decorators set; the values depend on the request, so they are set here.
    """
    host = request.get_host()
    websocket = f"{'wss' if request.is_secure() else 'ws'}://{host}"
    ancestors = frame_ancestor_sources(domains)
    setattr(response, "_csp_update", {"connect-src": [websocket]})  # noqa: B010
    setattr(response, "_csp_replace", {"frame-ancestors": ancestors})  # noqa: B010
    # Framed by other sites: one that isolates itself (COEP) must still be able to.
    response["Cross-Origin-Resource-Policy"] = "cross-origin"


@require_GET
@xframe_options_exempt
def chat_page(request: HttpRequest, slug: str) -> HttpResponse:
    """The chat the widget frames; only this page may be shown inside other sites."""
    tenant = current_tenant()
    chat_settings = chat_settings_get()
    domains = list(chat_settings.allowed_frame_domains or [])
    if not has_feature(tenant, CHAT):
        response = render(request, "tenants/unavailable.html", {
            "tenant": tenant,
            "detail": f"{tenant.name} does not offer chat at the moment.",
        }, status=403)
    else:
        response = render(request, "agent/chat.html", {
            "tenant": tenant,
            "websocket_path": f"/ws/chat/{tenant.slug}/",
        })
    _chat_page_policy(request, response, domains)
    return response
