"""Signed links that let a customer manage one appointment without an account.

The token names the appointment and its reference, is signed with the site's
secret under a salt that includes the tenant id (a token of one business is
worthless at another's address) and expires a while after the appointment.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.utils import timezone

from booking.models import Appointment
from tenants.context import current_tenant

# How long after the appointment's end its link keeps working (to see what
# happened or rebook); a token can be no older than MAX_AGE in any case.
VALID_AFTER_END = timedelta(days=30)
MAX_AGE = timedelta(days=800)


def _salt() -> str:
    return f"booking.manage:{current_tenant().pk}"


def manage_token_for(appointment: Appointment) -> str:
    expires = int((appointment.end + VALID_AFTER_END).timestamp())
    return signing.dumps({"a": appointment.pk, "r": appointment.reference, "e": expires},
                         salt=_salt(), compress=True)


def appointment_from_manage_token(token: str, *, now: datetime | None = None) -> Appointment | None:
    """The appointment a token grants, or None when it is forged, expired or for elsewhere."""
    try:
        payload = signing.loads(token, salt=_salt(), max_age=MAX_AGE)
        appointment_id, reference, expires = int(payload["a"]), str(payload["r"]), int(payload["e"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    if (now or timezone.now()).timestamp() > expires:
        return None
    return (
        Appointment.objects.select_related("service", "staff", "customer")
        .filter(pk=appointment_id, reference=reference)
        .first()
    )


def manage_path_for(appointment: Appointment) -> str:
    return f"/b/{current_tenant().slug}/manage/{manage_token_for(appointment)}/"


def manage_url_for(appointment: Appointment) -> str:
    """The absolute link for messages and API answers (PUBLIC_BASE_URL + path)."""
    return f"{settings.PUBLIC_BASE_URL}{manage_path_for(appointment)}"
