"""What the assistant knows about the business: plain data, read once and cached.

The system prompt, the ``business_info``/``list_services`` tools, the offline
dialogue and the assistant's availability searches all describe the business
from the same snapshot, so they can never disagree.

A chat turn takes its snapshot from ``business_facts_cached``: the profile,
services, staff, working hours, closures and chat greeting change rarely, and reading them
again on every message was a third of a turn's queries. The cache is per
process and per business (keyed by the tenant id); ``agent.receivers`` calls
``facts_changed`` when any of those rows is saved or deleted, which replaces
the business's version token in Django's cache, so every process sharing that
cache reads afresh on its next turn. A snapshot is also never older than
``FACTS_TTL_SECONDS``, for writes that send no signal (``bulk_create``,
``update``) or processes that share no cache. Appointments are not facts:
availability always reads them fresh (``agent.tools``).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
import time as clock
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from django.core.cache import cache

from agent.models import ChatSettings
from booking.availability import Closure as ClosureSpan
from booking.models import Closure, WorkingHours
from booking.selectors import business_region, profile_get, services_list, staff_list
from tenants.context import current_tenant

logger = logging.getLogger(__name__)

DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
CLOSURES_AHEAD = timedelta(days=60)
MAX_CLOSURES = 10


@dataclass(frozen=True)
class ServiceFact:
    id: int
    name: str
    duration_minutes: int
    price: Decimal
    description: str
    staff: tuple[str, ...]
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "duration_minutes": self.duration_minutes,
            "price": f"{self.price:.2f}",
            "description": self.description,
            "staff": list(self.staff),
        }


@dataclass(frozen=True)
class StaffFact:
    """An active staff member, as the availability engine needs them."""

    id: int
    name: str
    service_ids: frozenset[int]
    # weekday (0=Monday) -> local working intervals
    weekly_hours: Mapping[int, tuple[tuple[time, time], ...]]


@dataclass(frozen=True)
class BusinessFacts:
    name: str
    address: str
    phone: str
    email: str
    timezone: ZoneInfo
    region: str  # country for reading national phone numbers, e.g. "US"
    services: tuple[ServiceFact, ...]
    staff: tuple[str, ...]
    # Opening hours per day key ("mon".."sun"): merged working hours of all staff.
    hours: dict[str, list[tuple[time, time]]]
    closures: tuple[dict[str, str], ...]
    min_notice_minutes: int
    max_days_ahead: int
    cancellation_notice_minutes: int
    slot_step_minutes: int = 15
    # Active staff (the order of ``staff``), for availability searches.
    members: tuple[StaffFact, ...] = ()
    # Business and staff closures that end after the snapshot was read, by start.
    closure_spans: tuple[ClosureSpan, ...] = ()
    # The owner's chat greeting ("" for the standard one).
    greeting: str = ""

    def service_named(self, name: str) -> ServiceFact | None:
        wanted = " ".join(str(name).split()).casefold()
        for service in self.services:
            if service.name.casefold() == wanted or str(service.id) == wanted:
                return service
        return None

    def hours_text(self) -> list[str]:
        lines = []
        for key, label in zip(DAY_KEYS, DAY_NAMES, strict=True):
            spans = self.hours.get(key, [])
            text = ", ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in spans) if spans else "closed"
            lines.append(f"{label}: {text}")
        return lines

    def policies(self) -> dict[str, Any]:
        return {
            "min_notice_minutes": self.min_notice_minutes,
            "max_days_ahead": self.max_days_ahead,
            "cancellation_notice_minutes": self.cancellation_notice_minutes,
            "cancellation": (
                f"Appointments can be cancelled or moved online up to "
                f"{_duration(self.cancellation_notice_minutes)} before they start."
            ),
            "booking_window": (
                f"Bookings open {_duration(self.min_notice_minutes)} ahead at the earliest "
                f"and up to {self.max_days_ahead} days ahead."
            ),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "phone": self.phone,
            "email": self.email,
            "timezone": self.timezone.key,
            "hours": {
                key: [[f"{a:%H:%M}", f"{b:%H:%M}"] for a, b in spans]
                for key, spans in self.hours.items()
            },
            "closures": list(self.closures),
            "policies": self.policies(),
            "services": [service.as_dict() for service in self.services],
            "staff": list(self.staff),
        }


def _duration(minutes: int) -> str:
    if minutes and minutes % 1440 == 0:
        days = minutes // 1440
        return f"{days} day{'s' if days != 1 else ''}"
    if minutes and minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minutes"


def _merge(spans: list[tuple[time, time]]) -> list[tuple[time, time]]:
    merged: list[tuple[time, time]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged




# --- reading ---------------------------------------------------------------------------

# Closures that ended this long before a snapshot was read are left out of it:
# no slot of a search starting today can touch them.
CLOSURES_BEHIND = timedelta(days=2)


@dataclass(frozen=True)
class _ClosureRow:
    span: ClosureSpan
    reason: str
    start_text: str  # local ISO 8601, as the facts show it
    end_text: str


@dataclass(frozen=True)
class _Snapshot:
    facts: BusinessFacts  # ``closures`` as of ``read_for``
    closures: tuple[_ClosureRow, ...]  # whole-business closures, by start
    read_for: datetime  # the ``now`` it was read for
    read_at: float  # time.monotonic() when it was read
    version: str | None


def _read(now: datetime) -> _Snapshot:
    """The business in context, from the database (seven queries)."""
    profile = profile_get()
    tz = ZoneInfo(profile.timezone)
    staff = list(staff_list())
    active_ids = {member.pk for member in staff}
    offered_by: dict[int, set[int]] = {member.pk: set() for member in staff}
    services = []
    for service in services_list().prefetch_related("staff"):
        members = [m for m in service.staff.all() if m.active]
        for member in members:
            # Read without a transaction: a member activated meanwhile waits for the next read.
            offered_by.get(member.pk, set()).add(service.pk)
        names = tuple(m.name for m in members)
        if names:  # a service nobody offers cannot be booked; don't advertise it
            services.append(ServiceFact(
                id=service.pk, name=service.name, duration_minutes=service.duration_minutes,
                price=service.price, description=service.description, staff=names,
                buffer_before_minutes=service.buffer_before_minutes,
                buffer_after_minutes=service.buffer_after_minutes,
            ))
    by_day: dict[str, list[tuple[time, time]]] = {key: [] for key in DAY_KEYS}
    weekly: dict[int, dict[int, list[tuple[time, time]]]] = {pk: {} for pk in active_ids}
    for staff_id, weekday, start, end in WorkingHours.objects.filter(
        staff_id__in=active_ids
    ).values_list("staff_id", "weekday", "start", "end"):
        by_day[DAY_KEYS[weekday]].append((start, end))
        weekly[staff_id].setdefault(weekday, []).append((start, end))
    spans: list[ClosureSpan] = []
    rows: list[_ClosureRow] = []
    for closed_from, closed_until, closed_staff, reason in Closure.objects.filter(
        end__gt=now - CLOSURES_BEHIND
    ).order_by("start", "pk").values_list("start", "end", "staff_id", "reason"):
        span = ClosureSpan(start=closed_from, end=closed_until, staff_id=closed_staff)
        spans.append(span)
        if closed_staff is None:
            rows.append(_ClosureRow(span=span, reason=reason,
                                    start_text=closed_from.astimezone(tz).isoformat(),
                                    end_text=closed_until.astimezone(tz).isoformat()))
    facts = BusinessFacts(
        name=profile.display_name,
        address=profile.address,
        phone=profile.phone,
        email=profile.email,
        timezone=tz,
        region=business_region(profile) or "US",
        services=tuple(services),
        staff=tuple(member.name for member in staff),
        hours={key: _merge(spans) for key, spans in by_day.items()},
        closures=(),
        min_notice_minutes=profile.min_notice_minutes,
        max_days_ahead=profile.max_days_ahead,
        cancellation_notice_minutes=profile.cancellation_notice_minutes,
        slot_step_minutes=profile.slot_step_minutes,
        members=tuple(
            StaffFact(id=member.pk, name=member.name,
                      service_ids=frozenset(offered_by[member.pk]),
                      weekly_hours={day: tuple(sorted(v)) for day, v in weekly[member.pk].items()})
            for member in staff
        ),
        closure_spans=tuple(spans),
        greeting=ChatSettings.objects.filter(pk=1).values_list("greeting", flat=True).first()
        or "",
    )
    snapshot = _Snapshot(facts=facts, closures=tuple(rows), read_for=now,
                         read_at=clock.monotonic(), version=None)
    return dataclasses.replace(snapshot, facts=_facts_at(snapshot, now))


def _facts_at(snapshot: _Snapshot, now: datetime) -> BusinessFacts:
    """The snapshot's facts with the closures customers are told about at ``now``."""
    horizon = now + CLOSURES_AHEAD
    closures = tuple(
        {"start": row.start_text, "end": row.end_text, "reason": row.reason}
        for row in snapshot.closures
        if row.span.end > now and row.span.start < horizon
    )[:MAX_CLOSURES]
    if closures == snapshot.facts.closures:
        return snapshot.facts
    return dataclasses.replace(snapshot.facts, closures=closures)


def business_facts(*, now: datetime) -> BusinessFacts:
    """A snapshot of the business in context, read from its database now."""
    return _read(now).facts


# --- the per-process cache -------------------------------------------------------------

FACTS_TTL_SECONDS = 10.0
# A snapshot answers for a ``now`` up to this far past the one it was read for
# (which closures are "coming up" depends on it); tests and replays may jump further.
FACTS_NOW_SLACK = timedelta(hours=1)
MAX_CACHED_BUSINESSES = 512

_snapshots: OrderedDict[UUID, _Snapshot] = OrderedDict()
_snapshots_lock = threading.Lock()


def _version_key(tenant_id: UUID) -> str:
    # The tenant id is in the key: businesses share the cache, never a value.
    return f"agent:facts-version:{tenant_id.hex}"


def _current_version(tenant_id: UUID) -> str | None:
    """The business's version token in the shared cache (None: the cache keeps nothing)."""
    key = _version_key(tenant_id)
    try:
        version = cache.get(key)
        if version is None:
            cache.add(key, secrets.token_hex(8), timeout=None)
            version = cache.get(key)
    except Exception:  # a cache outage costs reads, never a turn
        logger.warning("cache unavailable: business facts read without it", exc_info=True)
        return None
    return version if isinstance(version, str) else None


def facts_changed(tenant_id: UUID) -> None:
    """The business's profile, services, staff, hours or closures changed: read them again.

    Call after the change is committed, so that no turn can read the old rows
    under the new version.
    """
    cache.set(_version_key(tenant_id), secrets.token_hex(8), timeout=None)
    with _snapshots_lock:
        _snapshots.pop(tenant_id, None)


def business_facts_cached(*, now: datetime) -> BusinessFacts:
    """``business_facts`` for the business in context, from this process's cache when fresh."""
    tenant_id = current_tenant().pk
    # The version is read before the rows: a change committed in between
    # replaces it, and the next turn reads again.
    version = _current_version(tenant_id)
    with _snapshots_lock:
        snapshot = _snapshots.get(tenant_id)
    if (
        snapshot is not None
        and version is not None
        and snapshot.version == version
        and clock.monotonic() - snapshot.read_at < FACTS_TTL_SECONDS
        and abs(now - snapshot.read_for) <= FACTS_NOW_SLACK
    ):
        return _facts_at(snapshot, now)
    snapshot = dataclasses.replace(_read(now), version=version)
    if version is not None:
        with _snapshots_lock:
            _snapshots[tenant_id] = snapshot
            _snapshots.move_to_end(tenant_id)
            while len(_snapshots) > MAX_CACHED_BUSINESSES:
                _snapshots.popitem(last=False)
    return snapshot.facts
