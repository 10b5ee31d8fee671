"""What follows a change of an appointment: messages to the customer and the waitlist.

Connected to ``booking.signals.appointment_changed`` in ``BookingConfig.ready``.
The signal arrives after the booking transaction committed; the receiver
writes the Notification rows (a short tenant transaction) and leaves the slow
parts, sending and waitlist promotion, to tasks.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from django.utils import timezone

from booking import signals
from tenants.context import current_tenant_or_none, on_tenant_commit, tenant_context
from tenants.models import Tenant

logger = logging.getLogger(__name__)

# Changes that free a slot someone on the waitlist might want.
FREES_SLOT = (signals.CANCELLED, signals.RESCHEDULED, signals.NO_SHOW)


def _tenant(tenant_id: uuid.UUID | str) -> Tenant | None:
    current = current_tenant_or_none()
    if current is not None and str(current.pk) == str(tenant_id):
        return current
    return Tenant.objects.filter(pk=tenant_id).first()


def on_appointment_changed(
    sender: object,
    *,
    kind: str,
    tenant_id: uuid.UUID | str,
    appointment_id: int,
    previous_start: datetime | None = None,
    previous_staff_id: int | None = None,
    **kwargs: Any,
) -> None:
    tenant = _tenant(tenant_id)
    if tenant is None:
        return
    with tenant_context(tenant):
        from booking.notifications import appointment_notify

        appointment_notify(
            appointment_id=appointment_id, change=kind, previous_start=previous_start
        )
        if kind in FREES_SLOT:
            _promote_freed_slot(
                tenant, kind=kind, appointment_id=appointment_id,
                previous_start=previous_start, previous_staff_id=previous_staff_id,
            )


def _promote_freed_slot(
    tenant: Tenant, *, kind: str, appointment_id: int,
    previous_start: datetime | None, previous_staff_id: int | None,
) -> None:
    from billing.entitlements import has_feature
    from billing.plans import WAITLIST
    from booking.models import Appointment, WaitlistEntry
    from booking.tasks import promote_waitlist

    if not has_feature(tenant, WAITLIST):
        return
    appointment = Appointment.objects.filter(pk=appointment_id).first()
    if appointment is None:
        return
    if kind == signals.RESCHEDULED:
        if previous_start is None or previous_staff_id is None:
            return
        start, staff_id = previous_start, previous_staff_id
    else:
        start, staff_id = appointment.start, appointment.staff_id
    # A no-show frees nothing once the time has begun, nor does any past slot.
    if start <= timezone.now():
        return
    # Nobody waiting: no task at all (the common case).
    if not WaitlistEntry.objects.filter(
        status=WaitlistEntry.Status.WAITING, service_id=appointment.service_id
    ).exists():
        return
    args = (str(tenant.pk), appointment.service_id, staff_id, start.isoformat(),
            appointment.customer_id)

    def enqueue() -> None:
        try:
            promote_waitlist.enqueue(*args)
        except Exception:
            logger.exception("could not enqueue waitlist promotion for appointment %s",
                             appointment_id)

    on_tenant_commit(enqueue)
