"""The one write path for customers and appointments.

The booking page, the API, the dashboard, the agent, the phone flow and the
waitlist all book, cancel and move appointments through these functions. Each
write validates its inputs first, then runs one short durable transaction on
the tenant's database (on SQLite BEGIN IMMEDIATE: the write lock is held from
the first statement, so the availability re-check and the insert cannot
interleave with another booking; on PostgreSQL a row lock on each staff member
the write may book does that). The customer's messages for the change
(confirmation, reminders, notices) are recorded in that same transaction, so a
committed booking never lacks them; their delivery tasks and the
``booking.signals.appointment_changed`` announcement follow only after commit.

Never call these while holding a transaction open across network calls: they
are durable and refuse to nest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connections
from django.utils import timezone

from billing.entitlements import appointment_limit, ensure_can_book
from booking import availability, notifications, signals
from booking.availability import Slot, Unavailable
from booking.catalog import catalog_for
from booking.errors import (
    AppointmentNotFound,
    BookingError,
    Closed,
    IdempotencyKeyReused,
    InvalidInput,
    InvalidState,
    NotOffered,
    OffGrid,
    OutsideHours,
    SlotTaken,
    TooFarAhead,
    TooLateToCancel,
    TooSoon,
    entitlement_errors,
)
from booking.models import Appointment, BusinessProfile, Customer, Service, StaffMember
from booking.phones import phone_normalize
from booking.selectors import (
    EARLIEST_YEAR,
    LATEST_YEAR,
    REFERENCE_ALPHABET,
    appointments_count_this_month,
    business_region,
    business_zone,
    engine_data,
    profile_get,
)
from tenants.context import current_alias, current_tenant, on_tenant_commit, tenant_atomic

logger = logging.getLogger(__name__)

MAX_NOTES = 2000
MAX_IDEMPOTENCY_KEY = 100


# --- customers -------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerDetails:
    """Validated customer details (phone in E.164), not yet saved."""

    name: str
    phone: str
    email: str = ""


def customer_details_clean(
    *, name: str, phone: str, email: str = "", region: str | None = None
) -> CustomerDetails:
    """Validate and normalise what a customer typed; raises InvalidInput naming the field.

    National phone numbers are read in ``region`` (default: the business's country).
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name", "Please give your name.")
    name = " ".join(name.split())
    if len(name) > 120 or not name.isprintable():
        raise InvalidInput("name", "That name is too long or contains odd characters.")
    if not isinstance(email, str):
        raise InvalidInput("email", "The email address must be text.")
    email = email.strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise InvalidInput("email", "That email address is not valid.") from None
    if not isinstance(phone, str):
        raise InvalidInput("phone", "The phone number must be text.")
    e164 = phone_normalize(phone, region=region if region is not None else business_region())
    return CustomerDetails(name=name, phone=e164, email=email)


_CUSTOMER_UPSERT = (
    'INSERT INTO "booking_customer" ("name", "phone", "email", "created_at") '
    "VALUES (%s, %s, %s, %s) "
    'ON CONFLICT ("phone") DO UPDATE SET "name" = excluded."name", '
    # An empty email means "not given", never "forget the one we have".
    """"email" = CASE WHEN excluded."email" <> '' THEN excluded."email" """
    'ELSE "booking_customer"."email" END '
    'RETURNING "id", "name", "phone", "email"'
)


def _customer_save(details: CustomerDetails) -> Customer:
    """The customer with this phone number, inserted or updated with these details.

    Every booking goes through here, so it is one statement (SQLite 3.35+ and
    PostgreSQL both have ON CONFLICT ... RETURNING) instead of a read and then
    a write; the ORM's two cost a booking about 0.5 ms (bench/README.md).
    """
    connection = connections[current_alias()]
    with connection.cursor() as cursor:
        cursor.execute(_CUSTOMER_UPSERT, [
            details.name, details.phone, details.email,
            connection.ops.adapt_datetimefield_value(timezone.now()),
        ])
        row = cursor.fetchone()
    # created_at stays deferred: read only if someone asks for it.
    return Customer.from_db(connection.alias, ["id", "name", "phone", "email"], row)


def customer_upsert(*, name: str, phone: str, email: str = "") -> Customer:
    """The customer with this phone number, created or updated with the given details."""
    details = customer_details_clean(name=name, phone=phone, email=email)
    with tenant_atomic():
        return _customer_save(details)


# --- shared checks ---------------------------------------------------------------------


def _require_id(field: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidInput(field, "Must be a positive whole number (an id).")


def _require_aware(field: str, value: object) -> None:
    if not isinstance(value, datetime):
        raise InvalidInput(field, "Must be a date and time.")
    if value.utcoffset() is None:
        raise InvalidInput(field, "Must carry a time zone offset, e.g. 2026-03-09T09:00:00-05:00.")
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise InvalidInput(field, "That date is out of range.")


def _locked_profile() -> BusinessProfile:
    # A row lock on PostgreSQL serialises a tenant's bookings (the monthly count
    # and the slot check); SQLite ignores it and relies on BEGIN IMMEDIATE.
    profile = BusinessProfile.objects.select_for_update().order_by("pk").first()
    return profile if profile is not None else profile_get()


def _lock_calendars(*, service: Service, staff_id: int | None, also: int | None = None) -> None:
    """Row-lock every staff member whose calendar this write may fill, until commit.

    PostgreSQL's guard against double booking: a competing write for the same
    person waits here, then re-checks availability against what the winner
    committed (READ COMMITTED reads afresh per statement). ``staff_id=None``
    locks everyone offering the service (plus ``also``), in pk order so two
    such writes never wait on each other in a cycle. SQLite has no row locks
    and needs none: BEGIN IMMEDIATE already holds the whole database.
    """
    if not connections[current_alias()].features.has_select_for_update:
        return
    if staff_id is not None:
        ids = {staff_id}
    else:
        ids = set(service.staff.values_list("pk", flat=True))
        if also is not None:
            ids.add(also)
    locked = StaffMember.objects.select_for_update().filter(pk__in=ids).order_by("pk")
    list(locked.values_list("pk", flat=True))


_REASON_ERRORS: dict[Unavailable, type[BookingError]] = {
    Unavailable.NOT_OFFERED: NotOffered,
    Unavailable.TOO_SOON: TooSoon,
    Unavailable.TOO_FAR_AHEAD: TooFarAhead,
    Unavailable.OUTSIDE_HOURS: OutsideHours,
    Unavailable.OFF_GRID: OffGrid,
    Unavailable.CLOSED: Closed,
    Unavailable.TAKEN: SlotTaken,
}


def _slot_check(
    *,
    profile: BusinessProfile,
    service: Service,
    start: datetime,
    staff_id: int | None,
    now: datetime,
    exclude_appointment_id: int | None = None,
    named_staff_must_exist: bool = False,
) -> availability.SlotCheck:
    # check_slot looks at the local day of ``start`` (which staff member is least
    # busy that day, and what overlaps the buffered slot). The slack covers a
    # midnight that a clock change skips or repeats (shifts are at most 2 hours).
    tz = business_zone(profile)
    day = start.astimezone(tz).date()
    slack = timedelta(hours=3)
    data = engine_data(
        profile=profile,
        service=service,
        span_start=datetime.combine(day, time(), tz)
        - timedelta(minutes=service.buffer_before_minutes) - slack,
        span_end=datetime.combine(day + timedelta(days=1), time(), tz)
        + timedelta(minutes=service.buffer_after_minutes) + slack,
        staff_id=staff_id,
        exclude_appointment_id=exclude_appointment_id,
    )
    # The engine loads a named member only when active: its answer doubles as
    # the existence check, one query fewer than asking separately.
    if named_staff_must_exist and staff_id is not None and all(
        member.id != staff_id for member in data.staff
    ):
        raise InvalidInput("staff", "No such staff member.")
    return availability.check_slot(
        tz=data.tz,
        policy=data.policy,
        service=data.service,
        staff=data.staff,
        closures=data.closures,
        busy=data.busy,
        now=now,
        start=start,
        staff_id=staff_id,
    )


def _refusal(check: availability.SlotCheck, *, staff_id: int | None) -> BookingError:
    assert check.reason is not None
    error = _REASON_ERRORS[check.reason]
    if error is NotOffered and staff_id is None:
        return NotOffered("Nobody offers that service at the moment.")
    return error()


def _block(service: Service, slot: Slot) -> tuple[datetime, datetime]:
    return (
        slot.start - timedelta(minutes=service.buffer_before_minutes),
        slot.end + timedelta(minutes=service.buffer_after_minutes),
    )


def _new_reference() -> str:
    """A short code customers can read over the phone: "K7Q-4MZ" (31^6 ≈ 9e8 codes)."""
    for _ in range(20):
        code = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(6))
        reference = f"{code[:3]}-{code[3:]}"
        if not Appointment.objects.filter(reference=reference).exists():
            return reference
    raise RuntimeError("could not find a free appointment reference")


def _announce(kind: str, appointment: Appointment, **extra: object) -> None:
    tenant_id, appointment_id = current_tenant().pk, appointment.pk

    def send() -> None:
        # A failing listener must not turn a committed booking into an error.
        for receiver, result in signals.appointment_changed.send_robust(
            sender=Appointment, kind=kind, tenant_id=tenant_id, appointment_id=appointment_id,
            **extra,
        ):
            if isinstance(result, Exception):
                logger.error(
                    "appointment_changed listener %r failed for appointment %s",
                    receiver, appointment_id, exc_info=result,
                )

    on_tenant_commit(send)


def _reload(appointment: Appointment) -> Appointment:
    if not isinstance(appointment, Appointment) or appointment.pk is None:
        raise InvalidInput("appointment", "Not a saved appointment.")
    current = (
        Appointment.objects.select_related("service", "staff", "customer")
        .filter(pk=appointment.pk)
        .first()
    )
    if current is None:
        raise AppointmentNotFound()
    return current


def _within_change_notice(appointment: Appointment, profile: BusinessProfile,
                          now: datetime) -> bool:
    notice = timedelta(minutes=profile.cancellation_notice_minutes)
    return now > appointment.start - notice


# --- booking ---------------------------------------------------------------------------


def _fingerprint(
    *, service_id: int, start: datetime, staff_id: int | None, customer: CustomerDetails,
    channel: str, notes: str,
) -> str:
    payload = [
        service_id, start.astimezone(UTC).isoformat(), staff_id,
        customer.phone, customer.name, customer.email, channel, notes,
    ]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()


def _replay(existing: Appointment, fingerprint: str) -> Appointment:
    if existing.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    return existing


def appointment_book(
    *,
    service_id: int,
    start: datetime,
    customer: Customer | CustomerDetails,
    channel: str,
    staff_id: int | None = None,
    idempotency_key: str | None = None,
    notes: str = "",
    now: datetime | None = None,
) -> Appointment:
    """Book ``service_id`` at ``start`` for ``customer``; the one way appointments are made.

    ``staff_id=None`` means anyone offering the service (the engine's choice:
    the least busy that day). ``customer`` is a saved Customer or validated
    CustomerDetails, saved only if the booking succeeds. With an
    ``idempotency_key``, repeating the same request returns the first
    appointment instead of booking twice; the same key with a different request
    raises IdempotencyKeyReused.

    Raises a BookingError: InvalidInput, PlanLimitReached, BookingPaused,
    SlotTaken, TooSoon, TooFarAhead, OutsideHours, OffGrid, Closed, NotOffered.
    """
    _require_id("service", service_id)
    _require_id("staff", staff_id, optional=True)
    _require_aware("start", start)
    if channel not in Appointment.Channel.values:
        raise InvalidInput("channel", f"Unknown channel {channel!r}.")
    if not isinstance(notes, str) or len(notes) > MAX_NOTES:
        raise InvalidInput("notes", f"Notes must be text of at most {MAX_NOTES} characters.")
    if idempotency_key is not None and (
        not isinstance(idempotency_key, str)
        or not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY
        or not idempotency_key.isascii()
        or not idempotency_key.isprintable()
    ):
        raise InvalidInput(
            "idempotency_key", f"Must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters."
        )
    if isinstance(customer, Customer):
        if customer.pk is None:
            raise InvalidInput("customer", "Not a saved customer.")
        details = CustomerDetails(name=customer.name, phone=customer.phone, email=customer.email)
    elif isinstance(customer, CustomerDetails):
        details = customer
    else:
        raise InvalidInput("customer", "A Customer or CustomerDetails is required.")
    fingerprint = _fingerprint(
        service_id=service_id, start=start, staff_id=staff_id, customer=details,
        channel=channel, notes=notes,
    )

    try:
        with tenant_atomic(durable=True):
            frozen_now = now or timezone.now()
            # Locked first: on PostgreSQL a retry racing its original then sees it and replays.
            profile = _locked_profile()
            if idempotency_key is not None:
                existing = Appointment.objects.filter(idempotency_key=idempotency_key).first()
                if existing is not None:
                    return _replay(existing, fingerprint)
            tenant = current_tenant()
            # Counted inside the write transaction so two bookings cannot both take
            # the last one of the month. Cancelled appointments do not count.
            booked = 0
            if appointment_limit(tenant) is not None:
                booked = appointments_count_this_month(now=frozen_now, profile=profile)
            with entitlement_errors():
                ensure_can_book(tenant, booked_this_month=booked)

            service = catalog_for(profile).service(service_id)
            if service is None:
                raise InvalidInput("service", "No such service.")
            _lock_calendars(service=service, staff_id=staff_id)
            check = _slot_check(
                profile=profile, service=service, start=start, staff_id=staff_id, now=frozen_now,
                named_staff_must_exist=True,
            )
            if check.slot is None:
                raise _refusal(check, staff_id=staff_id)
            slot = check.slot

            saved_customer = customer if isinstance(customer, Customer) else _customer_save(details)
            block_start, block_end = _block(service, slot)
            appointment = Appointment.objects.create(
                service=service,
                staff_id=slot.staff_id,
                customer=saved_customer,
                start=slot.start,
                end=slot.end,
                block_start=block_start,
                block_end=block_end,
                status=Appointment.Status.BOOKED,
                channel=channel,
                reference=_new_reference(),
                idempotency_key=idempotency_key,
                request_fingerprint=fingerprint if idempotency_key else "",
                notes=notes,
            )
            notifications.appointment_change_record(
                appointment=appointment, change=signals.BOOKED, profile=profile, created=True
            )
            _announce(signals.BOOKED, appointment)
    except IntegrityError:
        # Only reachable where the lock above is weaker than SQLite's (two
        # requests with one key at once): the winner's appointment answers both.
        if idempotency_key is not None:
            existing = Appointment.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                return _replay(existing, fingerprint)
        raise
    logger.info("booked appointment %s via %s", appointment.pk, channel)
    return appointment


# --- changes to an appointment --------------------------------------------------------


def appointment_cancel(
    *, appointment: Appointment, by_customer: bool, now: datetime | None = None
) -> Appointment:
    """Cancel a booked appointment; its slot is free again at once.

    Customers must cancel at least ``cancellation_notice_minutes`` ahead
    (TooLateToCancel); the business may always cancel. Cancelling a cancelled
    appointment changes nothing. Returns the updated appointment.
    """
    with tenant_atomic(durable=True):
        frozen_now = now or timezone.now()
        current = _reload(appointment)
        if current.status == Appointment.Status.CANCELLED:
            return current
        if current.status != Appointment.Status.BOOKED:
            raise InvalidState("This appointment has already taken place.")
        if by_customer and _within_change_notice(current, profile_get(), frozen_now):
            raise TooLateToCancel(
                "It is too late to cancel this appointment online; please call us."
            )
        current.status = Appointment.Status.CANCELLED
        current.cancelled_at = frozen_now
        current.save(update_fields=["status", "cancelled_at"])
        notifications.appointment_change_record(appointment=current, change=signals.CANCELLED)
        _announce(signals.CANCELLED, current)
    logger.info("cancelled appointment %s", current.pk)
    appointment.refresh_from_db()
    return current


def appointment_reschedule(
    *,
    appointment: Appointment,
    new_start: datetime,
    by_customer: bool,
    staff_id: int | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Move a booked appointment to ``new_start``, keeping its reference.

    Atomic: the old slot is released and the new one checked in the same
    transaction, so the new time may overlap the old one, and on any refusal
    the appointment stays where it was. ``staff_id=None`` keeps the current
    staff member when they are free, else anyone offering the service.
    Customers must respect the cancellation notice of the current time.
    """
    _require_aware("new_start", new_start)
    _require_id("staff", staff_id, optional=True)
    with tenant_atomic(durable=True):
        frozen_now = now or timezone.now()
        current = _reload(appointment)
        if current.status != Appointment.Status.BOOKED:
            raise InvalidState("Only a booked appointment can be moved.")
        profile = _locked_profile()
        if by_customer and _within_change_notice(current, profile, frozen_now):
            raise TooLateToCancel("It is too late to move this appointment online; please call us.")
        service = current.service
        # Without a staff member named: the current one, else anyone offering the service.
        _lock_calendars(service=service, staff_id=staff_id, also=current.staff_id)
        check = _slot_check(
            profile=profile, service=service, start=new_start,
            staff_id=staff_id if staff_id is not None else current.staff_id,
            now=frozen_now, exclude_appointment_id=current.pk,
            named_staff_must_exist=staff_id is not None,
        )
        if check.slot is None and staff_id is None:
            check = _slot_check(
                profile=profile, service=service, start=new_start, staff_id=None,
                now=frozen_now, exclude_appointment_id=current.pk,
            )
        if check.slot is None:
            raise _refusal(check, staff_id=staff_id)
        slot = check.slot
        previous_start, previous_staff_id = current.start, current.staff_id
        current.start, current.end = slot.start, slot.end
        current.block_start, current.block_end = _block(service, slot)
        current.staff_id = slot.staff_id
        current.save(update_fields=["start", "end", "block_start", "block_end", "staff"])
        notifications.appointment_change_record(
            appointment=current, change=signals.RESCHEDULED, previous_start=previous_start,
            profile=profile,
        )
        _announce(signals.RESCHEDULED, current, previous_start=previous_start,
                  previous_staff_id=previous_staff_id)
    logger.info("rescheduled appointment %s", current.pk)
    appointment.refresh_from_db()
    return _reload(current)


def _set_outcome(
    appointment: Appointment, *, status: str, allowed_from: set[str], kind: str,
    now: datetime | None,
) -> Appointment:
    with tenant_atomic(durable=True):
        frozen_now = now or timezone.now()
        current = _reload(appointment)
        if current.status == status:
            return current
        if current.status not in allowed_from:
            raise InvalidState(f"A {current.get_status_display().lower()} appointment "
                               f"cannot be marked {kind.replace('_', ' ')}.")
        if frozen_now < current.start:
            raise InvalidState("This appointment has not started yet.")
        current.status = status
        current.save(update_fields=["status"])
        notifications.appointment_change_record(appointment=current, change=kind)
        _announce(kind, current)
    appointment.refresh_from_db()
    return current


def appointment_mark_no_show(
    *, appointment: Appointment, now: datetime | None = None
) -> Appointment:
    """The customer did not come (allowed once the appointment has started)."""
    return _set_outcome(
        appointment,
        status=Appointment.Status.NO_SHOW,
        allowed_from={Appointment.Status.BOOKED, Appointment.Status.COMPLETED},
        kind=signals.NO_SHOW,
        now=now,
    )


def appointment_complete(*, appointment: Appointment, now: datetime | None = None) -> Appointment:
    """The appointment took place (allowed once it has started)."""
    return _set_outcome(
        appointment,
        status=Appointment.Status.COMPLETED,
        allowed_from={Appointment.Status.BOOKED, Appointment.Status.NO_SHOW},
        kind=signals.COMPLETED,
        now=now,
    )
