"""Background work of the booking app (django-tasks; ``manage.py db_worker`` runs it).

Every task takes the tenant's id as a string plus plain ids (times as ISO 8601
strings): task arguments are stored as JSON in the control plane, and a task
must find its tenant itself (contextvars do not travel through a queue). Each
one looks the tenant up, enters its context, and calls a service. Enqueue them
after the tenant transaction commits (``on_tenant_commit``), never inside it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django_tasks import task

from tenants.context import tenant_context
from tenants.models import Tenant

logger = logging.getLogger(__name__)


@contextmanager
def _in_tenant(tenant_id: str) -> Iterator[Tenant | None]:
    """The tenant's context, or None when the tenant is gone or closed (the work is dropped)."""
    try:
        tenant = Tenant.objects.filter(pk=uuid.UUID(tenant_id)).first()
    except ValueError:
        tenant = None
    if tenant is None or tenant.status == Tenant.Status.CANCELLED:
        logger.warning("task for tenant %s dropped: no such open tenant", tenant_id)
        yield None
        return
    with tenant_context(tenant):
        yield tenant


@task()
def send_notification(tenant_id: str, notification_id: int) -> str:
    """Deliver one Notification (or skip it, or schedule its retry)."""
    from booking.notifications import notification_deliver

    with _in_tenant(tenant_id) as tenant:
        if tenant is None:
            return "no tenant"
        return notification_deliver(notification_id=notification_id)


@task()
def enqueue_deliveries(tenant_id: str, jobs: list[list[Any]]) -> str:
    """Enqueue ``send_notification`` for each ``[notification_id, ISO run_after]``.

    One booking's messages (a confirmation now, reminders later) arrive as one
    job, so the request writes to the queue once; each delivery then waits for
    its own time on the queue as usual.
    """
    for notification_id, run_after in jobs:
        send_notification.using(run_after=datetime.fromisoformat(str(run_after))).enqueue(
            tenant_id, int(notification_id)
        )
    return f"{len(jobs)} deliveries enqueued"


@task()
def promote_waitlist(
    tenant_id: str, service_id: int, staff_id: int, start: str,
    exclude_customer_id: int | None = None,
) -> str:
    """Give the freed slot (service, staff, ISO ``start``) to the first waiting entry it fits."""
    from booking.waitlist import waitlist_promote

    with _in_tenant(tenant_id) as tenant:
        if tenant is None:
            return "no tenant"
        entry = waitlist_promote(
            service_id=service_id, start=datetime.fromisoformat(start), staff_id=staff_id,
            exclude_customer_id=exclude_customer_id,
        )
        return "nobody" if entry is None else f"entry {entry.pk} {entry.status}"


@task()
def expire_waitlist_offer(tenant_id: str, entry_id: int) -> str:
    """At the end of the hold: expire the offer if still open, then offer the slot onwards."""
    from booking.models import WaitlistEntry
    from booking.waitlist import waitlist_expire, waitlist_promote

    with _in_tenant(tenant_id) as tenant:
        if tenant is None:
            return "no tenant"
        entry = WaitlistEntry.objects.filter(pk=entry_id).first()
        if entry is None:
            return "missing"
        expired = waitlist_expire(entry=entry)
        if expired is None:
            return "not expired"
        assert expired.offered_start is not None and expired.offered_staff_id is not None
        following = waitlist_promote(
            service_id=expired.service_id, start=expired.offered_start,
            staff_id=expired.offered_staff_id,
        )
        return "expired" if following is None else f"expired; entry {following.pk} next"
