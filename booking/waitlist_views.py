"""The page a waitlist offer links to: see the held time, confirm it with one button.

The link's signed token names the entry and the offered start; the tenant
comes from the slug (TenantMiddleware) and is part of the token's salt, so a
link is only good at its own business's address. Accepting is a POST
(CSRF-protected) and goes through ``booking.waitlist.waitlist_accept``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import OperationalError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from booking.errors import BookingError
from booking.models import WaitlistEntry
from booking.selectors import business_zone, profile_get
from booking.tokens import manage_path_for
from booking.waitlist import offer_from_token, waitlist_accept
from tenants.context import current_tenant

logger = logging.getLogger(__name__)

TEMPLATE = "booking/waitlist_offer.html"


def _offer_state(entry: WaitlistEntry, offered_start: datetime, now: datetime) -> str:
    if entry.offered_start != offered_start:
        return "gone"
    if entry.status == WaitlistEntry.Status.BOOKED and entry.appointment is not None:
        return "booked"
    if entry.status == WaitlistEntry.Status.OFFERED:
        expires = entry.offer_expires_at
        return "expired" if expires is not None and expires <= now else "open"
    if entry.status == WaitlistEntry.Status.EXPIRED:
        return "expired"
    return "gone"


def _render(request: HttpRequest, entry: WaitlistEntry, offered_start: datetime, *,
            error: str = "", status: int = 200) -> HttpResponse:
    profile = profile_get()
    state = _offer_state(entry, offered_start, timezone.now())
    context: dict[str, Any] = {
        "business": {
            "name": profile.display_name or current_tenant().name,
            "address": profile.address,
            "phone_display": profile.phone,
            "phone_link": profile.phone,
            "slug": current_tenant().slug,
        },
        "zone": profile.timezone,
        "zone_label": f"{profile.timezone.rsplit('/', 1)[-1].replace('_', ' ')} time",
        "entry": entry,
        "state": state,
        "start": offered_start,
        "service": entry.service,
        "staff": entry.offered_staff,
        "expires_at": entry.offer_expires_at,
        "error": error,
        "manage_path": manage_path_for(entry.appointment)
        if state == "booked" and entry.appointment is not None else "",
        "reference": entry.appointment.reference
        if state == "booked" and entry.appointment is not None else "",
    }
    # Dates on the page are the business's wall time, whoever looks.
    with timezone.override(business_zone(profile)):
        response = render(request, TEMPLATE, context, status=status)
    # The page carries a personal link: keep it out of shared caches and search engines.
    response["X-Robots-Tag"] = "noindex"
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def offer(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    found = offer_from_token(token)
    if found is None:
        raise Http404("No such offer.")
    entry, offered_start = found
    if request.method == "GET":
        return _render(request, entry, offered_start)
    try:
        waitlist_accept(entry=entry, offered_start=offered_start)
    except BookingError as exc:
        entry.refresh_from_db()
        return _render(request, entry, offered_start, error=exc.message,
                       status=exc.http_status)
    except OperationalError:
        logger.warning("database busy while accepting waitlist offer %s", entry.pk)
        return _render(request, entry, offered_start,
                       error="We are very busy right now; please try again in a moment.",
                       status=503)
    # Post/redirect/get: a reload shows the booking instead of posting again.
    page = reverse("waitlist_offer", kwargs={"slug": slug, "token": token})
    response = HttpResponseRedirect(page)
    response.status_code = 303  # "see other": the browser follows with a GET
    return response
