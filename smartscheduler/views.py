from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from billing.plans import CHAT, PHONE, PLANS, WAITLIST

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
