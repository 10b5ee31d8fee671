"""Messages to customers: confirmations, reminders, change notices, waitlist offers.

Two halves. Scheduling (``notification_schedule`` and the per-event helpers)
writes a ``Notification`` row per message and channel, and enqueues a task to
deliver it at its time once the tenant transaction commits; the booking
services record a change's messages inside the transaction that writes the
appointment (``appointment_change_record``), so both commit or neither. Delivery
(``notification_deliver``, run by the task) re-reads everything, skips a
message that no longer fits (a reminder for an appointment that was cancelled
or moved), claims the row, sends by email (Django's mail API, with an .ics
attachment where it helps) or SMS (``booking.sms``), and records the outcome.
A failed send is tried again later, up to MAX_ATTEMPTS in all.

Recipients are the customer's own data: they are stored on the row (the
business sees its send log) but never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import formataddr, make_msgid, parseaddr
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import timezone

from booking import ics, signals, sms
from booking.models import Appointment, BusinessProfile, Customer, Notification, WaitlistEntry
from booking.selectors import business_zone, profile_get
from booking.tokens import manage_url_for
from tenants.context import current_tenant, on_tenant_commit, tenant_atomic

logger = logging.getLogger(__name__)

Kind = Notification.Kind
Channel = Notification.Channel
Status = Notification.Status

MAX_ATTEMPTS = 3
# Wait before attempt 2 and attempt 3: long enough for a provider blip to pass,
# short enough that a reminder is still useful.
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=5))
ICS_FILENAME = "appointment.ics"


# --- scheduling ----------------------------------------------------------------------------


def recipients_of(customer: Customer) -> list[tuple[str, str]]:
    """(channel, address) pairs to reach a customer: email when they gave one, SMS always."""
    pairs: list[tuple[str, str]] = []
    if customer.email:
        pairs.append((Channel.EMAIL, customer.email))
    if customer.phone:
        pairs.append((Channel.SMS, customer.phone))
    return pairs


def _enqueue_deliveries(notifications: list[Notification]) -> None:
    """Enqueue a delivery task per row once the tenant transaction commits.

    The rows are part of the caller's transaction; the queue is not, so a task
    enqueued before commit could run against a row that never committed.
    """
    if not notifications:
        return
    # Imported here: the task module imports this one to run deliveries.
    from booking.tasks import enqueue_deliveries, send_notification

    tenant_id = str(current_tenant().pk)
    jobs = [(notification.pk, notification.scheduled_for) for notification in notifications]

    def enqueue() -> None:
        # The rows are committed either way and stay scheduled; a queue outage
        # must not undo the caller's booking, so it is logged for the operator.
        try:
            if len(jobs) == 1:
                notification_id, run_after = jobs[0]
                send_notification.using(run_after=run_after).enqueue(tenant_id, notification_id)
            else:
                # A booking records a confirmation and its reminders together:
                # one job on the queue, which enqueues each delivery for its own
                # time, instead of one queue write per message on the request.
                enqueue_deliveries.enqueue(
                    tenant_id, [[pk, when.isoformat()] for pk, when in jobs]
                )
        except Exception:
            logger.exception("could not enqueue delivery of notifications %s",
                             [pk for pk, _ in jobs])

    on_tenant_commit(enqueue)


def _enqueue_delivery(notification: Notification) -> None:
    _enqueue_deliveries([notification])


@dataclass(frozen=True)
class _Message:
    """One message to record: the fields of a new Notification row."""

    kind: str
    channel: str
    recipient: str
    dedupe_key: str
    scheduled_for: datetime
    appointment: Appointment | None = None
    waitlist_entry: WaitlistEntry | None = None
    for_start: datetime | None = None


def _schedule_many(messages: list[_Message], *, fresh: bool = False) -> list[Notification]:
    """Record messages (one row each, bulk-inserted) and enqueue their deliveries after commit.

    A message whose ``dedupe_key`` already has a row keeps that row and sends
    nothing more, unless the row was skipped: then it is due again. ``fresh``
    says no row can exist yet (the keys name an appointment written in this
    very transaction), which saves the lookup; the unique key still guards it.
    """
    if not messages:
        return []
    for message in messages:
        if message.kind not in Kind.values or message.channel not in Channel.values:
            raise ValueError(
                f"unknown notification kind/channel {message.kind!r}/{message.channel!r}"
            )
    # No savepoint: these rows belong to the caller's transaction, and a
    # failure here must fail it as a whole.
    with tenant_atomic(savepoint=False):
        existing = {} if fresh else Notification.objects.in_bulk(
            [message.dedupe_key for message in messages], field_name="dedupe_key"
        )
        result: dict[str, Notification] = {}
        new: list[Notification] = []
        due: list[Notification] = []
        for message in messages:
            if message.dedupe_key in result:
                continue
            notification = existing.get(message.dedupe_key)
            if notification is None:
                notification = Notification(
                    kind=message.kind, channel=message.channel, recipient=message.recipient,
                    dedupe_key=message.dedupe_key, scheduled_for=message.scheduled_for,
                    appointment=message.appointment, waitlist_entry=message.waitlist_entry,
                    for_start=message.for_start,
                )
                new.append(notification)
            elif notification.status == Status.SKIPPED:
                notification.status = Status.SCHEDULED
                notification.recipient = message.recipient
                notification.scheduled_for = message.scheduled_for
                notification.for_start = message.for_start
                notification.attempts = 0
                notification.last_error = ""
                notification.save(update_fields=[
                    "status", "recipient", "scheduled_for", "for_start", "attempts",
                    "last_error",
                ])
                due.append(notification)
            result[message.dedupe_key] = notification
        if new:
            Notification.objects.bulk_create(new)
        _enqueue_deliveries(new + due)
    return [result[message.dedupe_key] for message in messages]


def notification_schedule(
    *,
    kind: str,
    channel: str,
    recipient: str,
    dedupe_key: str,
    scheduled_for: datetime | None = None,
    appointment: Appointment | None = None,
    waitlist_entry: WaitlistEntry | None = None,
    for_start: datetime | None = None,
    now: datetime | None = None,
) -> Notification:
    """Record one message to send at ``scheduled_for`` (default now) and enqueue its delivery.

    ``dedupe_key`` names what the message is for; scheduling the same key again
    returns the existing row and sends nothing more, unless that row was
    skipped (a reminder for a start the appointment has moved back to is due
    again).
    """
    when = scheduled_for or now or timezone.now()
    return _schedule_many([_Message(
        kind=kind, channel=channel, recipient=recipient, dedupe_key=dedupe_key,
        scheduled_for=when, appointment=appointment, waitlist_entry=waitlist_entry,
        for_start=for_start,
    )])[0]


def _stamp(moment: datetime) -> int:
    return int(moment.timestamp())


def _customer_messages(
    appointment: Appointment, *, kind: str, key: str, now: datetime,
    scheduled_for: datetime | None = None, waitlist_entry: WaitlistEntry | None = None,
) -> list[_Message]:
    return [
        _Message(
            kind=kind, channel=channel, recipient=address,
            dedupe_key=f"{key}:{channel}", scheduled_for=scheduled_for or now,
            appointment=appointment, waitlist_entry=waitlist_entry,
            for_start=appointment.start,
        )
        for channel, address in recipients_of(appointment.customer)
    ]


def _notify_customer(
    appointment: Appointment, *, kind: str, key: str, now: datetime,
    scheduled_for: datetime | None = None, waitlist_entry: WaitlistEntry | None = None,
) -> list[Notification]:
    return _schedule_many(_customer_messages(
        appointment, kind=kind, key=key, now=now, scheduled_for=scheduled_for,
        waitlist_entry=waitlist_entry,
    ))


def _reminder_messages(appointment: Appointment, *, now: datetime,
                       profile: BusinessProfile | None = None) -> list[_Message]:
    offsets = (profile or profile_get()).reminder_offsets_minutes or []
    messages: list[_Message] = []
    for offset in sorted({o for o in offsets if isinstance(o, int) and o > 0}, reverse=True):
        when = appointment.start - timedelta(minutes=offset)
        if when <= now:
            continue
        messages += _customer_messages(
            appointment, kind=Kind.REMINDER, now=now, scheduled_for=when,
            key=f"reminder:{appointment.pk}:{_stamp(appointment.start)}:{offset}",
        )
    return messages


def reminders_schedule(
    *, appointment: Appointment, now: datetime | None = None
) -> list[Notification]:
    """Reminders at the business's offsets before the start; only those still in the future."""
    return _schedule_many(_reminder_messages(appointment, now=now or timezone.now()))


def reminders_skip(*, appointment: Appointment, reason: str, keep_start: datetime | None = None
                   ) -> int:
    """Mark the appointment's pending reminders skipped (all, or those not for ``keep_start``).

    Delivery would skip them anyway; doing it now keeps the send log truthful.
    """
    pending = Notification.objects.filter(
        appointment=appointment, kind=Kind.REMINDER, status=Status.SCHEDULED
    )
    if keep_start is not None:
        pending = pending.exclude(for_start=keep_start)
    return pending.update(status=Status.SKIPPED, last_error=reason[:200])


def appointment_change_record(
    *,
    appointment: Appointment,
    change: str,
    previous_start: datetime | None = None,
    now: datetime | None = None,
    profile: BusinessProfile | None = None,
    created: bool = False,
) -> list[Notification]:
    """Record the messages one change of an appointment calls for, in the caller's transaction.

    The booking services call this inside the transaction that writes the
    appointment, so the rows commit (or roll back) with it; deliveries are
    enqueued only after commit. ``appointment`` must be the row as just
    written, with its customer loaded.

    ``change`` is a ``booking.signals`` kind: booked (confirmation, unless the
    waitlist books it and says so itself, plus reminders), cancelled (notice,
    pending reminders dropped), rescheduled (notice with the new time, old
    reminders dropped, new ones scheduled), no_show (pending reminders
    dropped). Other kinds send nothing. ``profile`` spares a re-read when the
    caller holds it; ``created`` says the appointment was inserted in this
    transaction, so none of its messages can be recorded yet.
    """
    now = now or timezone.now()
    messages: list[_Message] = []
    with tenant_atomic(savepoint=False):
        if change == signals.BOOKED and appointment.status == Appointment.Status.BOOKED:
            if appointment.channel != Appointment.Channel.WAITLIST:
                messages += _customer_messages(
                    appointment, kind=Kind.CONFIRMATION, now=now,
                    key=f"confirmation:{appointment.pk}",
                )
            messages += _reminder_messages(appointment, now=now, profile=profile)
        elif change == signals.CANCELLED:
            reminders_skip(appointment=appointment, reason="appointment cancelled")
            if appointment.start > now:
                messages += _customer_messages(
                    appointment, kind=Kind.CANCELLATION, now=now,
                    key=f"cancellation:{appointment.pk}",
                )
        elif change == signals.RESCHEDULED:
            reminders_skip(appointment=appointment, reason="appointment moved",
                           keep_start=appointment.start)
            if appointment.status == Appointment.Status.BOOKED and appointment.start > now:
                moved_from = _stamp(previous_start) if previous_start else 0
                messages += _customer_messages(
                    appointment, kind=Kind.RESCHEDULE, now=now,
                    key=f"reschedule:{appointment.pk}:{moved_from}:{_stamp(appointment.start)}",
                )
                messages += _reminder_messages(appointment, now=now, profile=profile)
        elif change == signals.NO_SHOW:
            reminders_skip(appointment=appointment, reason="marked no-show")
        return _schedule_many(messages, fresh=created and change == signals.BOOKED)


def waitlist_offer_notify(*, entry: WaitlistEntry, now: datetime | None = None
                          ) -> list[Notification]:
    """Tell a waiting customer a slot is held for them, with the link to confirm it."""
    now = now or timezone.now()
    assert entry.offered_start is not None
    offered = _stamp(entry.offered_start)
    return [
        notification_schedule(
            kind=Kind.WAITLIST_OFFER, channel=channel, recipient=address,
            dedupe_key=f"waitlist_offer:{entry.pk}:{offered}:{entry.offered_staff_id}:{channel}",
            scheduled_for=now, waitlist_entry=entry, for_start=entry.offered_start, now=now,
        )
        for channel, address in recipients_of(entry.customer)
    ]


def waitlist_booked_notify(*, entry: WaitlistEntry, appointment: Appointment,
                           now: datetime | None = None) -> list[Notification]:
    """The confirmation of a booking the waitlist made (accepted offer or automatic)."""
    now = now or timezone.now()
    return _notify_customer(
        appointment, kind=Kind.WAITLIST_BOOKED, now=now, waitlist_entry=entry,
        key=f"waitlist_booked:{entry.pk}:{appointment.pk}",
    )


# --- delivery ------------------------------------------------------------------------------


def _skip_reason(notification: Notification, now: datetime) -> str:
    """Why this message should no longer go out ("" when it should)."""
    appointment, entry = notification.appointment, notification.waitlist_entry
    kind = notification.kind
    if kind == Kind.WAITLIST_OFFER:
        if entry is None:
            return "waitlist entry removed"
        if entry.status != WaitlistEntry.Status.OFFERED or entry.offered_start != (
            notification.for_start
        ):
            return "offer withdrawn"
        if entry.offer_expires_at is not None and entry.offer_expires_at <= now:
            return "offer expired"
        return ""
    if appointment is None:
        return "appointment removed"
    booked = appointment.status == Appointment.Status.BOOKED
    if kind == Kind.CANCELLATION:
        return "" if appointment.status == Appointment.Status.CANCELLED else "not cancelled"
    if not booked:
        return f"appointment {appointment.status}"
    if kind in (Kind.REMINDER, Kind.RESCHEDULE) and appointment.start != notification.for_start:
        return "appointment moved"
    if kind == Kind.REMINDER and appointment.start <= now:
        return "appointment already started"
    return ""


def notification_deliver(*, notification_id: int, now: datetime | None = None) -> str:
    """Send one scheduled notification; returns what happened (sent, skipped, retry, failed...).

    Safe to run twice: only a scheduled row that is due is claimed, and the
    claim (status "sending") is committed before anything leaves the process.
    """
    now = now or timezone.now()
    with tenant_atomic(durable=True):
        notification = (
            Notification.objects.select_related(
                "appointment__customer", "appointment__service", "appointment__staff",
                "waitlist_entry__customer", "waitlist_entry__service",
                "waitlist_entry__offered_staff",
            )
            .filter(pk=notification_id)
            .first()
        )
        if notification is None:
            return "missing"
        if notification.status != Status.SCHEDULED:
            return f"already {notification.status}"
        if notification.scheduled_for > now:
            # A stale copy of the task (the row was rescheduled); the current one runs later.
            return "not due"
        reason = _skip_reason(notification, now)
        if reason:
            notification.status = Status.SKIPPED
            notification.last_error = reason
            notification.save(update_fields=["status", "last_error"])
            logger.info("skipped notification %s (%s): %s", notification.pk,
                        notification.kind, reason)
            return "skipped"
        notification.status = Status.SENDING
        notification.attempts += 1
        notification.save(update_fields=["status", "attempts"])

    try:
        external_id = _send(notification, now=now)
    except Exception as exc:  # noqa: BLE001 - any provider failure is recorded and retried
        return _record_failure(notification, exc, now=now)
    with tenant_atomic():
        Notification.objects.filter(pk=notification.pk).update(
            status=Status.SENT, sent_at=now, external_id=external_id[:200], last_error="",
        )
    logger.info("sent notification %s (%s by %s)", notification.pk, notification.kind,
                notification.channel)
    return "sent"


def _error_summary(exc: Exception) -> str:
    # Provider messages may quote the number or address, so only the error's
    # class and any numeric provider code are kept.
    code = getattr(exc, "code", None) or getattr(exc, "status", None)
    name = type(exc).__name__
    return f"{name} {code}" if isinstance(code, int) else name


def _record_failure(notification: Notification, exc: Exception, *, now: datetime) -> str:
    error = _error_summary(exc)
    retry = notification.attempts < MAX_ATTEMPTS
    with tenant_atomic():
        notification.last_error = error
        if retry:
            delay = RETRY_DELAYS[min(notification.attempts, len(RETRY_DELAYS)) - 1]
            notification.status = Status.SCHEDULED
            notification.scheduled_for = now + delay
            notification.save(update_fields=["status", "scheduled_for", "last_error"])
            _enqueue_delivery(notification)
        else:
            notification.status = Status.FAILED
            notification.save(update_fields=["status", "last_error"])
    logger.warning(
        "notification %s (%s by %s) failed on attempt %s/%s: %s", notification.pk,
        notification.kind, notification.channel, notification.attempts, MAX_ATTEMPTS, error,
    )
    return "retry" if retry else "failed"


# --- what the messages say -----------------------------------------------------------------


def format_when(moment: datetime, profile: BusinessProfile) -> str:
    """"Tue Mar 10, 9:00 AM" in the business's zone (portable: no %-d)."""
    local = moment.astimezone(business_zone(profile))
    hour = local.hour % 12 or 12
    return f"{local:%a %b} {local.day}, {hour}:{local:%M %p}"


def _booking_page_url() -> str:
    return f"{settings.PUBLIC_BASE_URL}/b/{current_tenant().slug}/"


def _ics_sequence(notification: Notification) -> int:
    # Each reschedule notice is a new revision of the same calendar event.
    if notification.kind != Kind.RESCHEDULE or notification.appointment is None:
        return 0
    return Notification.objects.filter(
        appointment=notification.appointment, kind=Kind.RESCHEDULE,
        channel=notification.channel, pk__lte=notification.pk,
    ).count()


Message = tuple[str, str, bytes | None]  # subject, text, .ics attachment


def _appointment_message(notification: Notification, profile: BusinessProfile) -> Message:
    appointment = notification.appointment
    assert appointment is not None
    business = profile.display_name
    service, staff = appointment.service.name, appointment.staff.name
    when = format_when(appointment.start, profile)
    ref = appointment.reference
    kind = notification.kind
    attach = kind in (Kind.CONFIRMATION, Kind.RESCHEDULE, Kind.WAITLIST_BOOKED)
    texts: dict[str, tuple[str, str]] = {
        Kind.CONFIRMATION: (
            f"Booked: {service} on {when}",
            f"your {service} with {staff} is booked for {when}. Ref {ref}.",
        ),
        Kind.WAITLIST_BOOKED: (
            f"Booked from the waitlist: {service} on {when}",
            f"good news: a time opened up and your {service} with {staff} is booked for "
            f"{when}. Ref {ref}.",
        ),
        Kind.REMINDER: (
            f"Reminder: {service} on {when}",
            f"a reminder of your {service} with {staff} on {when}. Ref {ref}.",
        ),
        Kind.RESCHEDULE: (
            f"Moved: {service} now on {when}",
            f"your {service} with {staff} has moved to {when}. Ref {ref}.",
        ),
        Kind.CANCELLATION: (
            f"Cancelled: {service} on {when}",
            f"your {service} on {when} (ref {ref}) is cancelled.",
        ),
    }
    subject, line = texts[kind]
    if kind == Kind.CANCELLATION:
        link = f"To book again: {_booking_page_url()}"
    else:
        link = f"To change or cancel: {manage_url_for(appointment)}"
    if notification.channel == Channel.SMS:
        return subject, f"{business}: {line} {link}", None
    body = [f"Hello {appointment.customer.name},", "", line[0].upper() + line[1:], ""]
    if profile.address and kind != Kind.CANCELLATION:
        body += [f"Where: {profile.address}", ""]
    body += [link, "", business]
    if profile.phone:
        body.append(profile.phone)
    attachment = (
        ics.appointment_ics(appointment, sequence=_ics_sequence(notification))
        if attach else None
    )
    return f"{subject} ({business})", "\n".join(body), attachment


def _offer_message(notification: Notification, profile: BusinessProfile) -> Message:
    from booking.waitlist import offer_url_for

    entry = notification.waitlist_entry
    assert entry is not None and entry.offered_start is not None
    assert entry.offer_expires_at is not None
    business = profile.display_name
    when = format_when(entry.offered_start, profile)
    until = format_when(entry.offer_expires_at, profile)
    zone = business_zone(profile)
    if entry.offer_expires_at.astimezone(zone).date() == timezone.now().astimezone(zone).date():
        until = until.split(", ", 1)[1]  # today: the time says it all
    with_staff = f" with {entry.offered_staff.name}" if entry.offered_staff else ""
    line = (
        f"a {entry.service.name} slot{with_staff} opened on {when}. It is held for you "
        f"until {until}."
    )
    link = f"Confirm it here: {offer_url_for(entry)}"
    subject = f"A time opened up: {entry.service.name} on {when}"
    if notification.channel == Channel.SMS:
        return subject, f"{business}: {line} {link}", None
    body = [
        f"Hello {entry.customer.name},", "", line[0].upper() + line[1:],
        "If you do not confirm in time, we offer it to the next person on the waitlist.",
        "", link, "", business,
    ]
    return f"{subject} ({business})", "\n".join(body), None


def _from_address(profile: BusinessProfile) -> str:
    # The business's name on our sending address: customers recognise who wrote.
    _, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    name = " ".join(profile.display_name.split())
    return formataddr((name, address or "no-reply@localhost"))


def _send(notification: Notification, *, now: datetime) -> str:
    profile = profile_get()
    render: Callable[[Notification, BusinessProfile], Message] = (
        _offer_message if notification.kind == Kind.WAITLIST_OFFER else _appointment_message
    )
    subject, text, attachment = render(notification, profile)
    if notification.channel == Channel.SMS:
        return sms.send_sms(to=notification.recipient, body=text)
    host = urlsplit(settings.PUBLIC_BASE_URL).hostname or "localhost"
    message_id = make_msgid(domain=host)
    email = EmailMessage(
        subject=subject, body=text, from_email=_from_address(profile),
        to=[notification.recipient], reply_to=[profile.email] if profile.email else None,
        headers={"Message-ID": message_id},
    )
    if attachment is not None:
        email.attach(ICS_FILENAME, attachment, "text/calendar")
    email.send(fail_silently=False)
    return message_id
