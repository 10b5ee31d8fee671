from __future__ import annotations

import logging
import sys

from django.db import OperationalError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.views.decorators.csrf import requires_csrf_token
from django.views.decorators.http import require_GET

from billing.plans import CHAT, PHONE, PLANS, WAITLIST
from smartscheduler.health import OK, readiness
from smartscheduler.logging import request_id_var

FEATURE_LABELS = {
    CHAT: "Chat assistant on your website",
    WAITLIST: "Waitlist that fills cancelled slots",
    PHONE: "Phone assistant that answers calls",
}
DEMO_SLUG = "demo-dental"


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    plans = [
        {
            "code": spec.code,
            "name": spec.name,
            "price": spec.monthly_price,
            "limit": spec.appointment_limit,
            "features": [
                {"label": label, "included": feature in spec.features}
                for feature, label in FEATURE_LABELS.items()
            ],
        }
        for spec in PLANS.values()
    ]
    return render(request, "home.html", {"plans": plans, "demo_slug": DEMO_SLUG})


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - any failure means "not healthy"
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    checks = readiness()
    ready = all(result == OK for result in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


# --- error pages ---------------------------------------------------------------------------
# Friendly pages that never show a trace; JSON ``{"error", "detail"}`` under /api/.
# 400 and 500 render without the request's context processors: the failure may
# lie in what they touch (the session, the database, the host header).

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _api_error(code: str, detail: str, status: int) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status=status)


def _bare_page(template_name: str, status: int) -> HttpResponse:
    html = loader.render_to_string(template_name, {"request_id": request_id_var.get()})
    return HttpResponse(html, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return _api_error("bad_request", "The request could not be understood.", 400)
    return _bare_page("400.html", 400)


@requires_csrf_token
def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return _api_error("forbidden", "You may not do that.", 403)
    return render(request, "403.html", status=403)


@requires_csrf_token
def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return _api_error("not_found", "Nothing lives at this address.", 404)
    return render(request, "404.html", status=404)


# Seconds a client is asked to wait when a database is out of reach for now.
UNAVAILABLE_RETRY_AFTER = 5


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls this inside its exception handler, so the error is at hand.
    # A database refusing connections ("too many clients", a restart) or a
    # SQLite lock held past the busy timeout is passing, not a broken request:
    # 503 with Retry-After says come back, where a 500 says give up. This also
    # covers failures in middleware, before any view's own handling.
    if isinstance(sys.exc_info()[1], OperationalError):
        response: HttpResponse
        if _is_api(request):
            response = _api_error("busy", "We are very busy right now; please try again.", 503)
        else:
            response = _bare_page("503.html", 503)
        response["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
        return response
    if _is_api(request):
        return _api_error("server_error", "Something went wrong on our side; try again.", 500)
    return _bare_page("500.html", 500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without its token: usually an expired page or blocked cookies."""
    # The reason names the check that failed, not the user: safe to log, not to show.
    logger.warning("CSRF check failed: %s", reason)
    if _is_api(request):
        return _api_error("csrf_failed", "The request was refused: reload the page and retry.", 403)
    return render(request, "403_csrf.html", status=403)
