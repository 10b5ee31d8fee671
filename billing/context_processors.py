"""The dashboard's billing banner (past due, or booking paused), on every dashboard page."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.formats import date_format

from billing.models import BillingAccount
from billing.reconcile import billing_state


def billing_notice(request: HttpRequest) -> dict[str, Any]:
    tenant = getattr(request, "tenant", None)
    if tenant is None or not request.path.startswith("/dashboard/"):
        return {}
    if not request.user.is_authenticated:
        return {}
    # The banner reads the last known state: a page view never waits on Stripe.
    state = billing_state(tenant, refresh=False)
    if state.status == BillingAccount.Status.PAST_DUE and not state.bookings_paused:
        until = f" by {date_format(state.grace_ends)}" if state.grace_ends else ""
        return {"billing_notice": f"Your last payment failed. Please update your payment "
                                  f"method{until}, or online booking pauses."}
    if state.bookings_paused:
        return {"billing_notice": "Online booking is paused because of your subscription "
                                  f"({state.status_label.lower()})."}
    return {}
