"""The waitlist: customers waiting for a time that is taken, and what happens when one frees up.

A freed slot (a cancellation, the old time of a rescheduled appointment) goes
to the first waiting entry it fits, oldest first. An entry that consented to
``auto_book`` is booked straight away; any other gets an offer: the slot is
named and held for ``BusinessProfile.waitlist_hold_minutes`` (not reserved:
anyone may still book it), the customer gets a signed link to confirm, and
when the hold runs out the offer expires and the slot goes to the next entry.
Every booking goes through ``booking.services.appointment_book``, so the
waitlist can never double-book.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db.models import Q
from django.utils import timezone

from billing.entitlements import ensure_feature, has_feature
from billing.plans import WAITLIST
from booking import notifications
from booking.errors import (
    BookingError,
    InvalidInput,
    InvalidState,
    SlotTaken,
    SlotUnavailable,
    entitlement_errors,
)
from booking.models import Appointment, Customer, Service, WaitlistEntry
from booking.selectors import (
    EARLIEST_YEAR,
    LATEST_YEAR,
    business_zone,
    profile_get,
    service_get,
    slots_search,
    staff_get,
)
from booking.services import CustomerDetails, appointment_book, customer_upsert
from tenants.context import current_tenant, on_tenant_commit, tenant_atomic

logger = logging.getLogger(__name__)

Status = WaitlistEntry.Status
MAX_WINDOWS = 14
# An offer link outlives the longest hold by a margin, so a late click sees
# "expired" instead of "invalid link".
OFFER_TOKEN_MAX_AGE = timedelta(days=3)


# --- errors ------------------------------------------------------------------------------


class AlreadyWaiting(BookingError):
    code = "already_waiting"
    http_status = 409
    default_message = "You are already on the waitlist for this service."


class OfferUnavailable(BookingError):
    code = "offer_unavailable"
    http_status = 409
    default_message = "This offer is no longer available."


class OfferExpired(OfferUnavailable):
    code = "offer_expired"
    http_status = 410
    default_message = (
        "Sorry, this offer has expired and the time was offered to the next person waiting."
    )


class OfferSlotTaken(SlotTaken):
    default_message = (
        "Sorry, someone else booked that time before you confirmed. You are still on the "
        "waitlist, and we will let you know when another time opens up."
    )


# --- joining -----------------------------------------------------------------------------


def _clean_windows(windows: object) -> list[dict[str, str]]:
    """Validate [{"date": "YYYY-MM-DD", "start": "HH:MM", "end": "HH:MM"}, ...] (local times)."""
    if windows is None:
        return []
    if not isinstance(windows, list) or len(windows) > MAX_WINDOWS:
        raise InvalidInput("windows", f"Give a list of at most {MAX_WINDOWS} time windows.")
    cleaned = []
    for window in windows:
        if not isinstance(window, dict) or set(window) != {"date", "start", "end"}:
            raise InvalidInput("windows", 'Each window needs exactly "date", "start" and "end".')
        try:
            day = date.fromisoformat(str(window["date"]))
            start = time.fromisoformat(str(window["start"]))
            end = time.fromisoformat(str(window["end"]))
        except ValueError:
            raise InvalidInput(
                "windows", "Window dates are YYYY-MM-DD and times HH:MM."
            ) from None
        if not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
            raise InvalidInput("windows", "That date is out of range.")
        if not start < end:
            raise InvalidInput("windows", "A window's start must be before its end.")
        cleaned.append({"date": day.isoformat(), "start": f"{start:%H:%M}",
                        "end": f"{end:%H:%M}"})
    return cleaned


def _require_aware_or_none(field: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidInput(field, "Must be a date and time with a time zone offset.")
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise InvalidInput(field, "That date is out of range.")


def waitlist_join(
    *,
    customer: Customer | CustomerDetails,
    service_id: int,
    staff_id: int | None = None,
    windows: list[dict[str, str]] | None = None,
    earliest: datetime | None = None,
    latest: datetime | None = None,
    auto_book: bool = False,
    now: datetime | None = None,
) -> WaitlistEntry:
    """Put a customer on the waitlist for ``service_id`` (optionally one staff member).

    When they can come: ``windows`` (local dates and times, see WaitlistEntry)
    and/or ``earliest``/``latest`` (aware datetimes); nothing means any time.
    ``auto_book=True`` records the customer's consent to be booked into a
    freed slot without being asked first.

    Raises FeatureNotInPlan (the plan has no waitlist), InvalidInput,
    AlreadyWaiting (an entry for the same service is waiting or offered).
    """
    now = now or timezone.now()
    with entitlement_errors():
        ensure_feature(current_tenant(), WAITLIST)
    if not isinstance(service_id, int) or isinstance(service_id, bool):
        raise InvalidInput("service", "Must be a service id.")
    if staff_id is not None and (not isinstance(staff_id, int) or isinstance(staff_id, bool)):
        raise InvalidInput("staff", "Must be a staff member id.")
    cleaned_windows = _clean_windows(windows)
    _require_aware_or_none("earliest", earliest)
    _require_aware_or_none("latest", latest)
    if earliest is not None and latest is not None and not earliest < latest:
        raise InvalidInput("latest", "The latest time must be after the earliest.")
    if latest is not None and latest <= now:
        raise InvalidInput("latest", "That time has already passed.")
    if not isinstance(auto_book, bool):
        raise InvalidInput("auto_book", "Must be true or false.")
    service = service_get(service_id)
    if service is None:
        raise InvalidInput("service", "No such service.")
    if staff_id is not None:
        staff = staff_get(staff_id)
        if staff is None:
            raise InvalidInput("staff", "No such staff member.")
        if not staff.services.filter(pk=service.pk).exists():
            raise InvalidInput("staff", "That staff member does not offer this service.")
    if isinstance(customer, Customer):
        if customer.pk is None:
            raise InvalidInput("customer", "Not a saved customer.")
    elif not isinstance(customer, CustomerDetails):
        raise InvalidInput("customer", "A Customer or CustomerDetails is required.")

    with tenant_atomic(durable=True):
        saved = customer if isinstance(customer, Customer) else customer_upsert(
            name=customer.name, phone=customer.phone, email=customer.email
        )
        duplicate = WaitlistEntry.objects.filter(
            customer=saved, service=service, status__in=[Status.WAITING, Status.OFFERED]
        ).exists()
        if duplicate:
            raise AlreadyWaiting()
        entry = WaitlistEntry.objects.create(
            customer=saved, service=service, staff_id=staff_id, windows=cleaned_windows,
            earliest=earliest, latest=latest, auto_book=auto_book, status=Status.WAITING,
        )
    logger.info("waitlist entry %s joined for service %s", entry.pk, service.pk)
    return entry


def waitlist_remove(*, entry: WaitlistEntry) -> WaitlistEntry:
    """Take an entry off the waitlist (the customer no longer wants a time)."""
    with tenant_atomic(durable=True):
        current = _reload(entry)
        if current.status in (Status.WAITING, Status.OFFERED):
            current.status = Status.REMOVED
            current.offer_expires_at = None
            current.save(update_fields=["status", "offer_expires_at"])
    logger.info("waitlist entry %s removed", current.pk)
    return current


# --- matching a freed slot ---------------------------------------------------------------


def _reload(entry: WaitlistEntry, *, lock: bool = True) -> WaitlistEntry:
    """The entry as stored; inside a transaction, row-locked on PostgreSQL.

    Offer, expiry and acceptance read the entry's state and then change it;
    the lock keeps two of them from acting on one state at once (SQLite's
    IMMEDIATE transactions already serialise them, and ignore the lock).
    """
    if not isinstance(entry, WaitlistEntry) or entry.pk is None:
        raise InvalidInput("entry", "Not a saved waitlist entry.")
    entries = WaitlistEntry.objects.select_related("customer", "service", "staff", "offered_staff")
    if lock:
        # Only the entry's own row: FOR UPDATE may not reach the nullable joins.
        entries = entries.select_for_update(of=("self",))
    current = entries.filter(pk=entry.pk).first()
    if current is None:
        raise OfferUnavailable("That waitlist entry no longer exists.")
    return current


def _fits_windows(entry: WaitlistEntry, start: datetime, end: datetime, zone: Any) -> bool:
    if not entry.windows:
        return True
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    for window in entry.windows:
        day = date.fromisoformat(window["date"])
        opens = datetime.combine(day, time.fromisoformat(window["start"]), zone)
        closes = datetime.combine(day, time.fromisoformat(window["end"]), zone)
        if opens <= local_start and local_end <= closes:
            return True
    return False


def entries_for_slot(
    *, service: Service, start: datetime, staff_id: int, exclude_customer_id: int | None = None
) -> list[WaitlistEntry]:
    """Waiting entries a slot of ``service`` at ``start`` with ``staff_id`` fits, oldest first."""
    end = start + timedelta(minutes=service.duration_minutes)
    entries = (
        WaitlistEntry.objects.select_related("customer", "service")
        .filter(status=Status.WAITING, service=service)
        .filter(Q(staff__isnull=True) | Q(staff_id=staff_id))
        .filter(Q(earliest__isnull=True) | Q(earliest__lte=start))
        .filter(Q(latest__isnull=True) | Q(latest__gte=end))
        .order_by("created_at", "pk")
    )
    if exclude_customer_id is not None:
        entries = entries.exclude(customer_id=exclude_customer_id)
    zone = business_zone()
    # Someone already booked at that time cannot come twice.
    busy_customers = set(
        Appointment.objects.filter(
            status=Appointment.Status.BOOKED, start__lt=end, end__gt=start
        ).values_list("customer_id", flat=True)
    )
    return [
        entry for entry in entries
        if entry.customer_id not in busy_customers and _fits_windows(entry, start, end, zone)
    ]


def _slot_open(service: Service, start: datetime, staff_id: int, now: datetime) -> bool:
    # The public search applies every rule a booking would (notice, hours,
    # closures, taken), so an offer is only made for a time that can be booked.
    day = start.astimezone(business_zone()).date()
    slots = slots_search(service_id=service.pk, start_date=day, end_date=day, staff_id=staff_id,
                         now=now, any_staff=False)
    return any(slot.start == start and slot.staff_id == staff_id for slot in slots)


def waitlist_promote(
    *,
    service_id: int,
    start: datetime,
    staff_id: int,
    exclude_customer_id: int | None = None,
    now: datetime | None = None,
) -> WaitlistEntry | None:
    """Give a freed slot to the first waiting entry it fits: book it or offer it.

    Returns the entry that was booked or offered, or None when nobody fits,
    the slot cannot be booked any more, or the plan has no waitlist.
    ``exclude_customer_id``: the customer who just gave the slot up.
    """
    now = now or timezone.now()
    tenant = current_tenant()
    if not tenant.is_active or not has_feature(tenant, WAITLIST):
        return None
    service = service_get(service_id)
    if service is None or start <= now or staff_get(staff_id) is None:
        return None
    if not _slot_open(service, start, staff_id, now):
        return None
    # One open offer per slot: a second would only let one customer down.
    if WaitlistEntry.objects.filter(
        status=Status.OFFERED, offered_start=start, offered_staff_id=staff_id,
        offer_expires_at__gt=now,
    ).exists():
        return None
    for entry in entries_for_slot(service=service, start=start, staff_id=staff_id,
                                  exclude_customer_id=exclude_customer_id):
        if entry.auto_book:
            booked = _auto_book(entry, start=start, staff_id=staff_id, now=now)
            # Booked, or the slot itself cannot be booked: either way it is settled.
            return entry if booked else None
        try:
            return waitlist_offer(entry=entry, start=start, staff_id=staff_id, now=now)
        except InvalidState:
            continue  # changed since it was read (removed, or offered elsewhere)
    return None


def _idempotency_key(entry: WaitlistEntry, start: datetime) -> str:
    return f"waitlist-{entry.pk}-{int(start.timestamp())}"


def _mark_booked(entry: WaitlistEntry, appointment: Appointment, now: datetime) -> None:
    with tenant_atomic(durable=True):
        current = _reload(entry)
        current.status = Status.BOOKED
        current.appointment = appointment
        current.offered_start = appointment.start
        current.offered_staff_id = appointment.staff_id
        current.save(update_fields=["status", "appointment", "offered_start", "offered_staff"])
        notifications.waitlist_booked_notify(entry=current, appointment=appointment, now=now)
    logger.info("waitlist entry %s booked appointment %s", entry.pk, appointment.pk)


def _auto_book(entry: WaitlistEntry, *, start: datetime, staff_id: int, now: datetime
               ) -> Appointment | None:
    try:
        appointment = appointment_book(
            service_id=entry.service_id, start=start, staff_id=staff_id,
            customer=entry.customer, channel=Appointment.Channel.WAITLIST,
            idempotency_key=_idempotency_key(entry, start), now=now,
        )
    except BookingError as exc:
        logger.info("waitlist entry %s not booked automatically: %s", entry.pk, exc.code)
        return None
    _mark_booked(entry, appointment, now)
    return appointment


# --- offers ------------------------------------------------------------------------------


def _enqueue_expiry(entry: WaitlistEntry) -> None:
    from booking.tasks import expire_waitlist_offer

    tenant_id, entry_id, when = str(current_tenant().pk), entry.pk, entry.offer_expires_at

    def enqueue() -> None:
        try:
            expire_waitlist_offer.using(run_after=when).enqueue(tenant_id, entry_id)
        except Exception:
            logger.exception("could not enqueue expiry of waitlist offer %s", entry_id)

    on_tenant_commit(enqueue)


def waitlist_offer(
    *, entry: WaitlistEntry, start: datetime, staff_id: int, now: datetime | None = None
) -> WaitlistEntry:
    """Offer a waiting entry the slot at ``start`` with ``staff_id``; held for the hold time.

    Sends the offer (SMS, and email when known) with the confirmation link and
    schedules the offer's expiry. Raises InvalidState unless the entry is waiting.
    """
    now = now or timezone.now()
    profile = profile_get()
    # Accepting is a booking and must respect the booking notice, so the hold
    # never runs past the last moment the slot can still be booked.
    expires = min(now + timedelta(minutes=profile.waitlist_hold_minutes),
                  start - timedelta(minutes=profile.min_notice_minutes))
    if expires <= now:
        raise InvalidState("That time is too soon to offer.")
    with tenant_atomic(durable=True):
        current = _reload(entry)
        if current.status != Status.WAITING:
            raise InvalidState("This waitlist entry is not waiting for a time.")
        current.status = Status.OFFERED
        current.offered_start = start
        current.offered_staff_id = staff_id
        current.offer_expires_at = expires
        current.save(update_fields=[
            "status", "offered_start", "offered_staff", "offer_expires_at",
        ])
        notifications.waitlist_offer_notify(entry=current, now=now)
        _enqueue_expiry(current)
    logger.info("waitlist entry %s offered a slot until %s", current.pk,
                current.offer_expires_at.isoformat())
    return current


def _back_to_waiting(entry: WaitlistEntry, offered_start: datetime | None) -> None:
    with tenant_atomic(durable=True):
        current = _reload(entry)
        if current.status == Status.OFFERED and current.offered_start == offered_start:
            current.status = Status.WAITING
            current.offered_start = None
            current.offered_staff = None
            current.offer_expires_at = None
            current.save(update_fields=[
                "status", "offered_start", "offered_staff", "offer_expires_at",
            ])


def waitlist_accept(
    *, entry: WaitlistEntry, offered_start: datetime | None = None, now: datetime | None = None
) -> Appointment:
    """Book the slot an entry was offered; the customer confirmed in time.

    ``offered_start`` (from the link) must still be the entry's offer. If the
    slot was booked by someone else meanwhile, raises OfferSlotTaken and the
    entry goes back to waiting. Accepting twice returns the same appointment.
    Raises OfferExpired, OfferUnavailable, or the booking engine's errors.
    """
    now = now or timezone.now()
    current = _reload(entry, lock=False)
    if current.status == Status.BOOKED and current.appointment_id is not None and (
        offered_start is None or current.offered_start == offered_start
    ):
        appointment = (
            Appointment.objects.select_related("service", "staff", "customer")
            .filter(pk=current.appointment_id).first()
        )
        if appointment is not None:
            return appointment
    same_offer = current.offered_start is not None and (
        offered_start is None or current.offered_start == offered_start
    )
    if current.status == Status.EXPIRED and same_offer:
        raise OfferExpired()
    if current.status != Status.OFFERED or not same_offer:
        raise OfferUnavailable()
    assert current.offer_expires_at is not None and current.offered_staff_id is not None
    assert current.offered_start is not None
    if now >= current.offer_expires_at:
        raise OfferExpired()
    start = current.offered_start
    try:
        appointment = appointment_book(
            service_id=current.service_id, start=start, staff_id=current.offered_staff_id,
            customer=current.customer, channel=Appointment.Channel.WAITLIST,
            idempotency_key=_idempotency_key(current, start), now=now,
        )
    except SlotTaken as exc:
        _back_to_waiting(current, start)
        logger.info("waitlist entry %s: offered slot taken before it was accepted", current.pk)
        raise OfferSlotTaken() from exc
    except SlotUnavailable as exc:
        _back_to_waiting(current, start)
        raise OfferUnavailable(
            f"{exc.message} You are still on the waitlist, and we will let you know when "
            "another time opens up."
        ) from exc
    _mark_booked(current, appointment, now)
    return appointment


def waitlist_expire(*, entry: WaitlistEntry, now: datetime | None = None
                    ) -> WaitlistEntry | None:
    """Expire an offer whose hold has run out; returns the expired entry, or None if it was not.

    The caller (the expiry task) then offers the slot to the next entry with
    ``waitlist_promote``.
    """
    now = now or timezone.now()
    with tenant_atomic(durable=True):
        current = _reload(entry)
        if current.status != Status.OFFERED or current.offer_expires_at is None or (
            current.offer_expires_at > now
        ):
            return None
        current.status = Status.EXPIRED
        current.save(update_fields=["status"])
    logger.info("waitlist offer %s expired", current.pk)
    return current


# --- the confirmation link ---------------------------------------------------------------


def _offer_salt() -> str:
    # The tenant in the salt: a link from one business is worthless at another's address.
    return f"booking.waitlist-offer:{current_tenant().pk}"


def offer_token_for(entry: WaitlistEntry) -> str:
    assert entry.offered_start is not None
    return signing.dumps({"w": entry.pk, "s": int(entry.offered_start.timestamp())},
                         salt=_offer_salt(), compress=True)


def offer_from_token(token: str) -> tuple[WaitlistEntry, datetime] | None:
    """The entry and the offered start a link names; None when forged, stale or for elsewhere."""
    try:
        payload = signing.loads(token, salt=_offer_salt(),
                                max_age=OFFER_TOKEN_MAX_AGE)
        entry_id, stamp = int(payload["w"]), int(payload["s"])
        offered_start = datetime.fromtimestamp(stamp, tz=UTC)
    except (signing.BadSignature, KeyError, TypeError, ValueError, OverflowError):
        return None
    entry = (
        WaitlistEntry.objects.select_related(
            "customer", "service", "offered_staff", "appointment"
        )
        .filter(pk=entry_id)
        .first()
    )
    if entry is None:
        return None
    return entry, offered_start


def offer_path_for(entry: WaitlistEntry) -> str:
    return f"/b/{current_tenant().slug}/waitlist/{offer_token_for(entry)}/"


def offer_url_for(entry: WaitlistEntry) -> str:
    return f"{settings.PUBLIC_BASE_URL}{offer_path_for(entry)}"
