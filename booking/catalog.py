"""The business's catalogue, read once per process and kept while it is current.

Services, staff (and who offers what), working hours and closures: every
availability search and every booking needs them, they change a few times a
year, and reading them again was most of a booking's queries. A process keeps
one copy per business, stamped with ``BusinessProfile.catalog_version``. The
database replaces that value in the same transaction as any write to those
tables (triggers, migration ``0003_catalog_version``: bulk writes and hand-run
SQL included), and every caller passes the profile row it has just read, in
the transaction of its other reads. So a copy is used only when it is exactly
what the tables hold for that caller; otherwise it is read again. There is no
time-to-live and nothing to invalidate across processes.

Appointments are not catalogue: they are read fresh every time
(``booking.selectors.busy_blocks``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from uuid import UUID

from django.db.models import Q
from django.utils import timezone

from booking import availability
from booking.availability import StaffSpec
from booking.models import BusinessProfile, Closure, Service, StaffMember, WorkingHours
from tenants.context import current_alias, current_tenant

# Closures that ended this long before a copy was read are left out of it; a
# span that starts before that reads the database (a look into the past).
CLOSURES_BEHIND = timedelta(days=7)
# Businesses whose catalogue one process keeps, least recently used first out.
MAX_CACHED = 512

_SERVICE_FIELDS = tuple(field.attname for field in Service._meta.concrete_fields)
_SERVICE_ACTIVE = _SERVICE_FIELDS.index("active")


@dataclass(frozen=True)
class Catalog:
    version: int
    # Every service, active or not: id -> its column values, in _SERVICE_FIELDS order.
    service_rows: dict[int, tuple[Any, ...]]
    # Active staff with every service they offer (active or not) and their hours.
    staff: dict[int, StaffSpec]
    closures: tuple[availability.Closure, ...]
    closures_from: datetime

    def service(self, service_id: int) -> Service | None:
        """The active service as a model instance of its own (callers may attach it to rows)."""
        row = self.service_rows.get(service_id)
        if row is None or not row[_SERVICE_ACTIVE]:
            return None
        return Service.from_db(current_alias(), _SERVICE_FIELDS, row)

    def members(
        self,
        service_id: int,
        *,
        staff_id: int | None = None,
        staff_ids: Iterable[int] | None = None,
    ) -> list[StaffSpec]:
        """Active staff offering the service, by id; a named member is kept even if not.

        The engine then says "not offered" for a named member, as it would for
        one read from the database.
        """
        if staff_id is not None:
            member = self.staff.get(staff_id)
            return [member] if member is not None else []
        wanted = None if staff_ids is None else set(staff_ids)
        return [
            member for member_id, member in sorted(self.staff.items())
            if service_id in member.service_ids and (wanted is None or member_id in wanted)
        ]

    def closures_between(
        self, span_start: datetime, span_end: datetime, staff_ids: Iterable[int]
    ) -> list[availability.Closure] | None:
        """Business closures and those of these staff overlapping the span; None if not kept."""
        if span_start < self.closures_from:
            return None
        ids = set(staff_ids)
        return [
            closure for closure in self.closures
            if closure.start < span_end and closure.end > span_start
            and (closure.staff_id is None or closure.staff_id in ids)
        ]


_lock = threading.Lock()
_cached: OrderedDict[UUID, Catalog] = OrderedDict()


def catalog_for(profile: BusinessProfile) -> Catalog:
    """The current tenant's catalogue as of ``profile`` (read in the caller's transaction)."""
    tenant_id = current_tenant().pk
    if profile.pk is not None:
        with _lock:
            cached = _cached.get(tenant_id)
            if cached is not None and cached.version == profile.catalog_version:
                _cached.move_to_end(tenant_id)
                return cached
    catalog, consistent = _read()
    # Kept only when nothing changed while it was read (the version before and
    # after agree) and it is what the caller's profile describes; a caller
    # outside a transaction may have read its profile before a change.
    if consistent and catalog.version == profile.catalog_version and profile.pk is not None:
        with _lock:
            _cached[tenant_id] = catalog
            _cached.move_to_end(tenant_id)
            while len(_cached) > MAX_CACHED:
                _cached.popitem(last=False)
    return catalog


def _version() -> int | None:
    return (
        BusinessProfile.objects.order_by("pk").values_list("catalog_version", flat=True).first()
    )


def _read() -> tuple[Catalog, bool]:
    before = _version()
    closures_from = timezone.now() - CLOSURES_BEHIND
    service_rows = {
        row[0]: row for row in Service.objects.order_by().values_list(*_SERVICE_FIELDS)
    }
    offers: dict[int, set[int]] = {}
    for staff_id, service_id in StaffMember.services.through.objects.filter(
        staffmember__active=True
    ).order_by().values_list("staffmember_id", "service_id"):
        offers.setdefault(staff_id, set()).add(service_id)
    weekly: dict[int, dict[int, list[tuple[time, time]]]] = {
        staff_id: {} for staff_id in StaffMember.objects.filter(active=True)
        .order_by().values_list("pk", flat=True)
    }
    for staff_id, weekday, start, end in WorkingHours.objects.filter(
        staff__active=True
    ).order_by().values_list("staff_id", "weekday", "start", "end"):
        weekly[staff_id].setdefault(weekday, []).append((start, end))
    staff = {
        staff_id: StaffSpec(id=staff_id, service_ids=frozenset(offers.get(staff_id, ())),
                            weekly_hours=hours)
        for staff_id, hours in weekly.items()
    }
    closures = tuple(
        availability.Closure(start=start, end=end, staff_id=staff_id)
        for start, end, staff_id in Closure.objects.filter(end__gt=closures_from)
        .filter(Q(staff__isnull=True) | Q(staff__active=True))
        .order_by().values_list("start", "end", "staff_id")
    )
    after = _version()
    catalog = Catalog(
        version=after or 0, service_rows=service_rows, staff=staff, closures=closures,
        closures_from=closures_from,
    )
    return catalog, before == after and after is not None

