"""Reads of the booking data, for every caller (API, booking page, agent, voice, dashboard).

Availability is computed by the pure engine in ``booking.availability`` over
plain data loaded here in a handful of queries; the write path loads the same
data through ``engine_data`` so a search and a booking apply identical rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connections
from django.db.models import Q, QuerySet
from django.utils import timezone

from booking import availability
from booking.availability import PARTS_OF_DAY, Busy, Policy, ServiceSpec, Slot, StaffSpec
from booking.catalog import catalog_for
from booking.errors import InvalidInput
from booking.models import (
    MAX_BLOCK,
    Appointment,
    BusinessProfile,
    Closure,
    Customer,
    Service,
    StaffMember,
    WaitlistEntry,
)
from booking.phones import phone_normalize_or_none, region_for_zone
from tenants.context import current_alias, current_tenant

# A search covers at most this many local days (inclusive), so one request
# cannot ask the engine for a year of slots.
MAX_SEARCH_DAYS = 31
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L
# Dates outside these years are typos or probes; refusing them early also keeps
# the calendar arithmetic away from datetime's limits.
EARLIEST_YEAR, LATEST_YEAR = 2000, 2999


# --- the business ----------------------------------------------------------------


def profile_get() -> BusinessProfile:
    """The business's profile, created from the tenant's name and zone on first use."""
    profile = BusinessProfile.objects.order_by("pk").first()
    if profile is not None:
        return profile
    tenant = current_tenant()
    # A fixed pk makes two first uses at once agree on one row.
    profile, _ = BusinessProfile.objects.get_or_create(
        pk=1, defaults={"display_name": tenant.name, "timezone": tenant.timezone}
    )
    return profile


def _zone_name(profile: BusinessProfile | None) -> str:
    # The profile's zone mirrors the tenant's (it is set from it and read-only
    # elsewhere), and the tenant in context is already in memory: no query.
    return profile.timezone if profile is not None else current_tenant().timezone


def business_zone(profile: BusinessProfile | None = None) -> ZoneInfo:
    return ZoneInfo(_zone_name(profile))


def business_region(profile: BusinessProfile | None = None) -> str | None:
    """The country national phone numbers are read in ("US" for America/New_York)."""
    return region_for_zone(_zone_name(profile))


def policy_of(profile: BusinessProfile) -> Policy:
    return Policy(
        slot_step_minutes=profile.slot_step_minutes,
        min_notice_minutes=profile.min_notice_minutes,
        max_days_ahead=profile.max_days_ahead,
    )


def month_bounds(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The calendar month containing ``now`` in the business's zone, as UTC instants."""
    local = now.astimezone(tz)
    first = date(local.year, local.month, 1)
    following = date(local.year + 1, 1, 1) if local.month == 12 else date(
        local.year, local.month + 1, 1
    )
    return (
        datetime.combine(first, time(), tz).astimezone(ZoneInfo("UTC")),
        datetime.combine(following, time(), tz).astimezone(ZoneInfo("UTC")),
    )


def appointments_count_this_month(
    *, now: datetime | None = None, profile: BusinessProfile | None = None
) -> int:
    """Appointments created this calendar month (business zone) that still count.

    Cancelled appointments do not count against the plan's monthly limit:
    a customer who books and cancels must not use up the business's allowance.
    """
    start, end = month_bounds(now or timezone.now(), business_zone(profile))
    return (
        Appointment.objects.filter(created_at__gte=start, created_at__lt=end)
        .exclude(status=Appointment.Status.CANCELLED)
        .count()
    )


# --- catalogue ----------------------------------------------------------------------


def services_list() -> QuerySet[Service]:
    """Services customers can book, in the business's order."""
    return Service.objects.filter(active=True).order_by("position", "name", "pk")


def service_get(service_id: int) -> Service | None:
    return Service.objects.filter(pk=service_id, active=True).first()


def staff_list(*, service_id: int | None = None) -> QuerySet[StaffMember]:
    staff = StaffMember.objects.filter(active=True)
    if service_id is not None:
        staff = staff.filter(services__id=service_id, services__active=True)
    return staff.order_by("name", "pk")


def staff_get(staff_id: int) -> StaffMember | None:
    return StaffMember.objects.filter(pk=staff_id, active=True).first()


# --- availability -------------------------------------------------------------------


@dataclass(frozen=True)
class EngineData:
    """Everything the availability engine needs about one service near a span."""

    tz: ZoneInfo
    policy: Policy
    service: ServiceSpec
    staff: list[StaffSpec]
    closures: list[availability.Closure]
    busy: list[Busy]


def service_spec(service: Service) -> ServiceSpec:
    return ServiceSpec(
        id=service.pk,
        duration_minutes=service.duration_minutes,
        buffer_before_minutes=service.buffer_before_minutes,
        buffer_after_minutes=service.buffer_after_minutes,
    )


def _stored_instant(stored: str | datetime) -> datetime:
    """A datetime column as read by the driver, as an aware instant.

    SQLite returns the stored text ("2026-03-10 14:00:00", in UTC), PostgreSQL
    an aware datetime.
    """
    value = datetime.fromisoformat(stored) if isinstance(stored, str) else stored
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def engine_data(
    *,
    profile: BusinessProfile,
    service: Service,
    span_start: datetime,
    span_end: datetime,
    staff_id: int | None = None,
    staff_ids: Iterable[int] | None = None,
    exclude_appointment_id: int | None = None,
) -> EngineData:
    """Load staff, hours, closures and busy blocks relevant to [span_start, span_end).

    Staff are the active members offering ``service`` (or just ``staff_id``, or
    those of ``staff_ids``); an explicitly named member who does not offer it is
    still loaded, so the engine can say "not offered". Staff, hours and closures
    come from the process's copy of the catalogue when ``profile`` says it is
    current (``booking.catalog``); the busy blocks are always one query.
    """
    catalog = catalog_for(profile)
    staff = catalog.members(service.pk, staff_id=staff_id, staff_ids=staff_ids)
    ids = [member.id for member in staff]
    closures = catalog.closures_between(span_start, span_end, ids)
    if closures is None:  # a span reaching further back than the copy keeps
        closures = [
            availability.Closure(start=start, end=end, staff_id=sid)
            for start, end, sid in Closure.objects.filter(start__lt=span_end, end__gt=span_start)
            .filter(Q(staff__isnull=True) | Q(staff_id__in=ids))
            .order_by()
            .values_list("start", "end", "staff_id")
        ]

    busy = busy_blocks(staff_ids=ids, span_start=span_start, span_end=span_end,
                       exclude_appointment_id=exclude_appointment_id)
    return EngineData(
        tz=business_zone(profile),
        policy=policy_of(profile),
        service=service_spec(service),
        staff=staff,
        closures=closures,
        busy=busy,
    )


def busy_blocks(
    *,
    staff_ids: Iterable[int],
    span_start: datetime,
    span_end: datetime,
    exclude_appointment_id: int | None = None,
) -> list[Busy]:
    """The blocked times (appointments plus their buffers) of these staff overlapping the span.

    Always read afresh: whatever else a caller caches, a booking made a moment
    ago must never be offered again.

    Every search and every booking runs this query, so it is written out rather
    than built by the ORM: building it (and the per-value datetime converters)
    cost 0.49 ms a call, the statement itself 0.03 ms (bench/README.md). The
    values are adapted by the backend as the ORM would, so SQLite's text
    timestamps compare exactly as in ORM lookups.
    """
    ids = [int(staff_id) for staff_id in staff_ids]
    if not ids:
        return []
    connection = connections[current_alias()]
    adapt = connection.ops.adapt_datetimefield_value
    placeholders = ", ".join(["%s"] * len(ids))
    # Only placeholders are interpolated; every value is a parameter.
    sql = (
        'SELECT "staff_id", "block_start", "block_end" FROM "booking_appointment" '  # noqa: S608
        f'WHERE "staff_id" IN ({placeholders}) '
        # The lower bound on block_start keeps the (staff, block_start) index useful.
        'AND "block_start" > %s AND "block_start" < %s AND "block_end" > %s AND "status" <> %s'
    )
    params: list[Any] = [
        *ids, adapt(span_start - MAX_BLOCK), adapt(span_end), adapt(span_start),
        Appointment.Status.CANCELLED.value,
    ]
    if exclude_appointment_id is not None:
        sql += ' AND "id" <> %s'
        params.append(int(exclude_appointment_id))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [
        Busy(staff_id=sid, start=_stored_instant(start), end=_stored_instant(end))
        for sid, start, end in rows
    ]


def search_dates_check(start_date: date, end_date: date) -> None:
    """Refuse a search range that is out of bounds, reversed or too long."""
    for field, day in (("start", start_date), ("end", end_date)):
        if not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
            raise InvalidInput(field, "That date is out of range.")
    if end_date < start_date:
        raise InvalidInput("end", "The end date must not be before the start date.")
    if (end_date - start_date).days + 1 > MAX_SEARCH_DAYS:
        raise InvalidInput("end", f"Search at most {MAX_SEARCH_DAYS} days at a time.")


def search_span(start_date: date, end_date: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The instants a search over these local days must load (end without MAX_BLOCK).

    A day of slack each side covers zones whose local day straddles UTC days.
    """
    return (
        datetime.combine(start_date, time(), tz) - timedelta(days=1),
        datetime.combine(end_date + timedelta(days=1), time(), tz) + timedelta(days=1),
    )


def window_parse(window: tuple[time, time] | str | None) -> tuple[time, time] | None:
    """A search window: a (start, end) pair of local times or "morning"/"afternoon"/"evening"."""
    if window is None or isinstance(window, tuple):
        if window is not None and not window[0] < window[1]:
            raise InvalidInput("window", "The window's start must be before its end.")
        return window
    try:
        return PARTS_OF_DAY[window]
    except KeyError:
        raise InvalidInput(
            "window", f"Unknown part of the day; use one of {', '.join(PARTS_OF_DAY)}."
        ) from None


def slots_search(
    *,
    service_id: int,
    start_date: date,
    end_date: date,
    staff_id: int | None = None,
    window: tuple[time, time] | str | None = None,
    now: datetime | None = None,
    any_staff: bool = True,
    exclude_appointment_id: int | None = None,
) -> list[Slot]:
    """Bookable slots for a service whose local start date is in [start_date, end_date].

    With any_staff (the default) each start is listed once, with the staff member
    a booking for "anyone" would get; any_staff=False lists every (start, staff).
    ``exclude_appointment_id`` leaves that appointment out of the busy times: an
    appointment being moved may move onto times it overlaps itself.
    Raises InvalidInput for an unknown service/staff or a bad date range.
    """
    search_dates_check(start_date, end_date)
    bounds = window_parse(window)
    service = service_get(service_id)
    if service is None:
        raise InvalidInput("service", "No such service.")
    if staff_id is not None and staff_get(staff_id) is None:
        raise InvalidInput("staff", "No such staff member.")
    profile = profile_get()
    tz = business_zone(profile)
    span_start, span_end = search_span(start_date, end_date, tz)
    data = engine_data(
        profile=profile, service=service, span_start=span_start, span_end=span_end + MAX_BLOCK,
        staff_id=staff_id, exclude_appointment_id=exclude_appointment_id,
    )
    return availability.find_slots(
        tz=data.tz,
        policy=data.policy,
        service=data.service,
        staff=data.staff,
        closures=data.closures,
        busy=data.busy,
        now=now or timezone.now(),
        start_date=start_date,
        end_date=end_date,
        window=bounds,
        staff_id=staff_id,
        any_staff=any_staff,
    )


# --- appointments and customers ------------------------------------------------------


def _appointments() -> QuerySet[Appointment]:
    return Appointment.objects.select_related("service", "staff", "customer")


def appointment_get(appointment_id: int) -> Appointment | None:
    return _appointments().filter(pk=appointment_id).first()


def reference_normalize(reference: str) -> str | None:
    """"k7q 4mz", "K7Q4MZ" and "K7Q-4MZ" all mean K7Q-4MZ; None when it cannot be one."""
    if not isinstance(reference, str):
        return None
    compact = "".join(ch for ch in reference.upper() if ch.isalnum())
    if len(compact) != 6 or any(ch not in REFERENCE_ALPHABET for ch in compact):
        return None
    return f"{compact[:3]}-{compact[3:]}"


def appointment_by_reference(reference: str, phone: str | None = None) -> Appointment | None:
    """The appointment with this reference; when ``phone`` is given it must be the customer's.

    Public callers (agent, phone) pass the phone: a reference alone is short
    enough to guess, a reference plus the right phone number is not.
    """
    normalized = reference_normalize(reference)
    if normalized is None:
        return None
    appointments = _appointments().filter(reference=normalized)
    if phone is not None:
        e164 = phone_normalize_or_none(phone, region=business_region())
        if e164 is None:
            return None
        appointments = appointments.filter(customer__phone=e164)
    return appointments.first()


def customer_by_phone(phone: str) -> Customer | None:
    e164 = phone_normalize_or_none(phone, region=business_region())
    if e164 is None:
        return None
    return Customer.objects.filter(phone=e164).first()


def appointments_for_customer(
    phone: str, *, upcoming_only: bool = True, now: datetime | None = None
) -> QuerySet[Appointment]:
    """A customer's appointments by phone, soonest first; upcoming booked ones by default."""
    e164 = phone_normalize_or_none(phone, region=business_region())
    if e164 is None:
        return Appointment.objects.none()
    appointments = _appointments().filter(customer__phone=e164)
    if upcoming_only:
        appointments = appointments.filter(
            status=Appointment.Status.BOOKED, start__gte=now or timezone.now()
        )
    return appointments.order_by("start", "pk")


def appointments_between(start: datetime, end: datetime) -> QuerySet[Appointment]:
    """Appointments starting in [start, end), any status, in time order."""
    return _appointments().filter(start__gte=start, start__lt=end).order_by("start", "pk")


def appointments_all() -> QuerySet[Appointment]:
    return _appointments().order_by("start", "pk")


def waitlist_entries(*, status: str | None = None) -> QuerySet[WaitlistEntry]:
    entries = WaitlistEntry.objects.select_related("customer", "service", "staff")
    if status is not None:
        entries = entries.filter(status=status)
    return entries.order_by("created_at", "pk")
