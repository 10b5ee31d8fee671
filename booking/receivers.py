"""What follows a change of an appointment once it committed: the waitlist.

Connected to ``booking.signals.appointment_changed`` in ``BookingConfig.ready``.
The customer's messages are not written here: ``booking.services`` records
them in the booking's own transaction (``booking.notifications``), so they
cannot be lost to a second write failing after commit. The signal arrives
after that commit; a change that frees a slot enqueues a task to offer it to
the waitlist. That is a read and an enqueue, no tenant write; a failure is logged
(here or by the sender), never silent.
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
    if kind not in FREES_SLOT:
        return
    tenant = _tenant(tenant_id)
    if tenant is None:
        return
    with tenant_context(tenant):
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
        # The booking change is committed; the freed slot is only lost to the
        # waitlist, so the operator must hear of it.
        try:
            promote_waitlist.enqueue(*args)
        except Exception:
            logger.exception("could not enqueue waitlist promotion for appointment %s",
                             appointment_id)

    on_tenant_commit(enqueue)
