"""Confirmations, change notices, the send log, retries and the SMS/iCalendar plumbing.

Deliveries run through the real task worker (django-tasks-db's ``db_worker``
in batch mode) under time-machine, so ``run_after`` is honoured as in
production.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from unittest import mock
from urllib.parse import parse_qs

import django_tasks.base
import icalendar
import pytest
import time_machine
from django.core.management import call_command
from django.db import OperationalError
from django.db.models import Model, QuerySet
from django.test import override_settings

from booking import ics, services, signals, sms
from booking.models import Appointment, BusinessProfile, Notification
from booking.selectors import profile_get
from booking.services import (
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
    customer_details_clean,
)
from booking.tasks import send_notification
from tenants.context import tenant_context
from tests.booking.conftest import MakeShop, Shop, ada, local

TUESDAY = (2026, 3, 10)
ADA_PHONE, ADA_EMAIL = "+12125550100", "ada@example.com"
ADDRESS = "12 Main Street, Springfield"


# --- helpers shared by the notification, reminder and waitlist tests --------------------


def run_worker() -> None:
    """Run every task that is due now, as ``manage.py db_worker --batch`` does."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM,
                                                    signal.SIGQUIT)}
    try:
        call_command("db_worker", "--batch", "--no-startup-delay", "--interval", "0",
                     "--no-reload", verbosity=0, stdout=io.StringIO())
    finally:
        # The worker installs its own shutdown handlers; give pytest its own back.
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def use_locmem_sms(settings: Any) -> list[sms.SmsMessage]:
    settings.SMS_BACKEND = "booking.sms.LocmemBackend"
    sms.outbox.clear()
    return sms.outbox


def book(shop: Shop, service: str, start: datetime, staff: str | None = "Ana",
         **kwargs: Any) -> Appointment:
    kwargs.setdefault("customer", ada())
    kwargs.setdefault("channel", Appointment.Channel.WEB)
    return appointment_book(
        service_id=shop.services[service], start=start,
        staff_id=shop.staff[staff] if staff else None, **kwargs,
    )


class BrokenBackend(sms.BaseBackend):
    """A provider that refuses every message, quoting the number like real ones do."""

    calls = 0

    def send(self, message: sms.SmsMessage) -> str:
        BrokenBackend.calls += 1
        raise sms.SmsError(f"The 'To' number {message.to} is not reachable")


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def texts(settings: Any) -> list[sms.SmsMessage]:
    return use_locmem_sms(settings)


@pytest.fixture
def with_address(shop: Shop) -> BusinessProfile:
    profile = profile_get()
    profile.address = ADDRESS
    profile.email = "desk@testdental.example"
    profile.save()
    return profile


def sms_to(outbox: list[sms.SmsMessage], phone: str) -> list[str]:
    return [message.body for message in outbox if message.to == phone]


# --- confirmations -----------------------------------------------------------------------


def test_booking_sends_confirmation_email_with_ics_and_an_sms(
    shop: Shop, texts: list[sms.SmsMessage], with_address: BusinessProfile, mailoutbox: list[Any]
) -> None:
    appointment = book(shop, "Cleaning", local(*TUESDAY, 9))
    # Nothing leaves before the worker runs: the request only records and enqueues.
    assert mailoutbox == [] and texts == []

    run_worker()

    assert len(mailoutbox) == 1
    email = mailoutbox[0]
    assert email.to == [ADA_EMAIL]
    assert email.subject.startswith("Booked: Cleaning on Tue Mar 10, 9:00 AM")
    assert email.reply_to == ["desk@testdental.example"]
    assert "Test Dental" in email.from_email
    assert appointment.reference in email.body and "/manage/" in email.body
    [(filename, content, mimetype)] = email.attachments
    assert filename == "appointment.ics" and mimetype == "text/calendar"
    calendar = icalendar.Calendar.from_ical(content)
    [event] = calendar.walk("VEVENT")
    assert str(event["UID"]).startswith(f"{appointment.reference}.{shop.tenant.pk.hex}@")
    assert event.decoded("DTSTART") == datetime(2026, 3, 10, 13, 0, tzinfo=UTC)
    assert event.decoded("DTEND") == datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
    assert "DTSTART:20260310T130000Z" in content  # written in UTC
    assert str(event["SUMMARY"]) == "Cleaning at Test Dental"
    assert str(event["LOCATION"]) == ADDRESS

    [body] = sms_to(texts, ADA_PHONE)
    assert body.startswith("Test Dental: your Cleaning with Ana is booked for Tue Mar 10, 9:00 AM")
    assert appointment.reference in body and f"/b/{shop.tenant.slug}/manage/" in body

    sent = Notification.objects.filter(appointment=appointment, kind="confirmation")
    assert {(n.channel, n.status, n.attempts, n.recipient) for n in sent} == {
        ("email", "sent", 1, ADA_EMAIL), ("sms", "sent", 1, ADA_PHONE),
    }
    assert all(n.sent_at is not None and n.last_error == "" for n in sent)


def test_customer_without_email_gets_the_confirmation_by_sms_only(
    shop: Shop, texts: list[sms.SmsMessage], mailoutbox: list[Any]
) -> None:
    customer = customer_details_clean(name="Bo Smith", phone="+12125550155")
    book(shop, "Checkup", local(*TUESDAY, 10), customer=customer)
    run_worker()
    assert mailoutbox == []
    assert len(sms_to(texts, "+12125550155")) == 1
    assert list(Notification.objects.filter(kind="confirmation")
                .values_list("channel", flat=True)) == ["sms"]


def test_cancellation_and_reschedule_notices_are_sent(
    shop: Shop, texts: list[sms.SmsMessage], mailoutbox: list[Any]
) -> None:
    appointment = book(shop, "Cleaning", local(*TUESDAY, 9))
    run_worker()
    mailoutbox.clear()
    texts.clear()

    appointment_reschedule(appointment=appointment, new_start=local(2026, 3, 11, 10),
                           by_customer=True)
    run_worker()
    [moved] = mailoutbox
    assert moved.subject.startswith("Moved: Cleaning now on Wed Mar 11, 10:00 AM")
    event = icalendar.Calendar.from_ical(moved.attachments[0][1]).walk("VEVENT")[0]
    assert event.decoded("DTSTART") == datetime(2026, 3, 11, 14, 0, tzinfo=UTC)
    # Same event, next revision: calendar apps replace the earlier copy.
    assert str(event["UID"]).startswith(appointment.reference)
    assert int(event["SEQUENCE"]) == 1
    assert "has moved to Wed Mar 11, 10:00 AM" in sms_to(texts, ADA_PHONE)[0]

    mailoutbox.clear()
    texts.clear()
    appointment_cancel(appointment=appointment, by_customer=True)
    run_worker()
    [cancelled] = mailoutbox
    assert cancelled.subject.startswith("Cancelled: Cleaning on Wed Mar 11, 10:00 AM")
    assert cancelled.attachments == []
    [text] = sms_to(texts, ADA_PHONE)
    assert "is cancelled" in text and f"/b/{shop.tenant.slug}/" in text
    kinds = Notification.objects.filter(appointment=appointment, status="sent")
    assert sorted(kinds.values_list("kind", flat=True)) == sorted(
        ["confirmation"] * 2 + ["reschedule"] * 2 + ["cancellation"] * 2)


def test_confirmation_is_skipped_when_cancelled_before_it_went_out(
    shop: Shop, texts: list[sms.SmsMessage], mailoutbox: list[Any]
) -> None:
    appointment = book(shop, "Cleaning", local(*TUESDAY, 9))
    appointment_cancel(appointment=appointment, by_customer=False)
    run_worker()
    assert not any("is booked" in m.body for m in texts)
    confirmations = Notification.objects.filter(kind="confirmation")
    assert set(confirmations.values_list("status", "last_error")) == {
        ("skipped", "appointment cancelled")}
    assert Notification.objects.filter(kind="cancellation", status="sent").count() == 2


# --- rows are written with the appointment, in its transaction ----------------------------


@contextmanager
def database_locked_after_commit() -> Iterator[None]:
    """Every write made by what runs after the booking commits fails as SQLite does when busy.

    That is the load that used to lose messages: a second write transaction
    after the booking's own timed out on the lock.
    """
    real_on_commit = services.on_tenant_commit
    locked = OperationalError("database is locked")

    def run_locked(func: Callable[[], object]) -> None:
        with mock.patch.object(Model, "save_base", autospec=True, side_effect=locked), \
                mock.patch.object(QuerySet, "bulk_create", autospec=True, side_effect=locked), \
                mock.patch.object(QuerySet, "update", autospec=True, side_effect=locked):
            func()

    def register(func: Callable[[], object]) -> None:
        real_on_commit(lambda: run_locked(func))

    with mock.patch.object(services, "on_tenant_commit", autospec=True, side_effect=register):
        yield


def test_messages_survive_a_locked_database_after_the_booking_commits(
    shop: Shop, texts: list[sms.SmsMessage]
) -> None:
    with database_locked_after_commit():
        appointment = book(shop, "Cleaning", local(*TUESDAY, 9))

    rows = Notification.objects.filter(appointment=appointment)
    assert sorted(rows.values_list("kind", "status")) == sorted(
        [("confirmation", "scheduled")] * 2 + [("reminder", "scheduled")] * 4
    )
    run_worker()
    assert len(sms_to(texts, ADA_PHONE)) == 1
    assert rows.filter(kind="confirmation", status="sent").count() == 2


def test_rows_commit_with_the_booking_even_when_enqueueing_fails(
    shop: Shop, texts: list[sms.SmsMessage], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="booking.notifications")
    with mock.patch.object(
        django_tasks.base.Task, "enqueue", autospec=True, side_effect=ConnectionError("queue down")
    ) as enqueue:
        appointment = book(shop, "Cleaning", local(*TUESDAY, 9))

    rows = Notification.objects.filter(appointment=appointment)
    # Confirmation plus the 24-hour and 2-hour reminders, each by email and SMS.
    assert sorted(rows.values_list("kind", "channel", "status")) == sorted(
        [(kind, channel, "scheduled") for kind in ("confirmation", "reminder", "reminder")
         for channel in ("email", "sms")]
    )
    # The deliveries were enqueued after commit, as one job; its failure is logged
    # with the rows' ids and without the recipients.
    assert enqueue.call_count == 1
    failures = [r for r in caplog.records if "could not enqueue delivery" in r.getMessage()]
    assert len(failures) == 1
    assert all(str(pk) in failures[0].getMessage() for pk in rows.values_list("pk", flat=True))
    assert ADA_PHONE not in caplog.text and ADA_EMAIL not in caplog.text
    assert texts == []


def test_rows_exist_before_any_listener_hears_of_the_booking(shop: Shop) -> None:
    seen: list[list[str]] = []

    def listener(sender: object, *, appointment_id: int, **kwargs: Any) -> None:
        seen.append(sorted(Notification.objects.filter(appointment_id=appointment_id)
                           .values_list("kind", flat=True)))

    signals.appointment_changed.connect(listener, weak=False)
    try:
        book(shop, "Checkup", local(*TUESDAY, 10))
    finally:
        signals.appointment_changed.disconnect(listener)
    assert seen == [["confirmation"] * 2 + ["reminder"] * 4]


def test_a_booking_that_rolls_back_leaves_no_notification_rows(shop: Shop) -> None:
    # The last step inside the transaction fails, after the rows were written.
    failing_announce = mock.patch.object(
        services, "_announce", autospec=True, side_effect=RuntimeError("boom")
    )
    with failing_announce, pytest.raises(RuntimeError):
        book(shop, "Cleaning", local(*TUESDAY, 9))
    assert not Appointment.objects.exists()
    assert not Notification.objects.exists()


def test_a_cancellation_that_rolls_back_keeps_the_reminders_and_sends_nothing(
    shop: Shop,
) -> None:
    appointment = book(shop, "Cleaning", local(*TUESDAY, 9))
    before = set(Notification.objects.values_list("pk", "kind", "status"))
    failing_announce = mock.patch.object(
        services, "_announce", autospec=True, side_effect=RuntimeError("boom")
    )
    with failing_announce, pytest.raises(RuntimeError):
        appointment_cancel(appointment=appointment, by_customer=False)
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.BOOKED
    assert set(Notification.objects.values_list("pk", "kind", "status")) == before
    assert not Notification.objects.filter(kind="cancellation").exists()


# --- the send log: never twice, retries, no personal data in logs -------------------------


def test_a_task_run_twice_sends_once(shop: Shop, texts: list[sms.SmsMessage]) -> None:
    book(shop, "Checkup", local(*TUESDAY, 10))
    run_worker()
    notification = Notification.objects.get(kind="confirmation", channel="sms")
    send_notification.enqueue(str(shop.tenant.pk), notification.pk)
    send_notification.enqueue(str(shop.tenant.pk), notification.pk)
    run_worker()
    assert len(texts) == 1
    notification.refresh_from_db()
    assert notification.status == "sent" and notification.attempts == 1


def test_failed_sms_is_retried_with_backoff_then_stays_failed(
    shop: Shop, settings: Any, frozen: time_machine.Traveller, mailoutbox: list[Any]
) -> None:
    settings.SMS_BACKEND = f"{__name__}.BrokenBackend"
    BrokenBackend.calls = 0
    book(shop, "Checkup", local(*TUESDAY, 10))
    start = datetime.now(UTC)

    run_worker()
    sms_row = Notification.objects.get(kind="confirmation", channel="sms")
    assert (sms_row.status, sms_row.attempts, sms_row.last_error) == ("scheduled", 1, "SmsError")
    assert sms_row.scheduled_for == start + timedelta(minutes=1)
    # The email went out regardless.
    assert Notification.objects.get(kind="confirmation", channel="email").status == "sent"

    frozen.move_to(start + timedelta(seconds=59))
    run_worker()
    assert BrokenBackend.calls == 1  # the retry waits for its run_after

    frozen.move_to(start + timedelta(minutes=1))
    run_worker()
    sms_row.refresh_from_db()
    assert (sms_row.status, sms_row.attempts) == ("scheduled", 2)
    assert sms_row.scheduled_for == start + timedelta(minutes=6)

    frozen.move_to(start + timedelta(minutes=6))
    run_worker()
    sms_row.refresh_from_db()
    assert (sms_row.status, sms_row.attempts, sms_row.last_error) == ("failed", 3, "SmsError")
    assert BrokenBackend.calls == 3

    frozen.move_to(start + timedelta(hours=1))
    run_worker()
    assert BrokenBackend.calls == 3
    # The provider's message quoted the number; the send log does not.
    assert ADA_PHONE not in sms_row.last_error


def test_logs_carry_no_personal_data(
    shop: Shop, texts: list[sms.SmsMessage], caplog: pytest.LogCaptureFixture, settings: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    appointment = book(shop, "Cleaning", local(*TUESDAY, 9))
    run_worker()
    settings.SMS_BACKEND = f"{__name__}.BrokenBackend"
    appointment_cancel(appointment=appointment, by_customer=True)
    run_worker()
    assert texts and "sent notification" in caplog.text and "failed on attempt" in caplog.text
    for personal in (ADA_PHONE, "2125550100", ADA_EMAIL, "Ada", "Lovelace"):
        assert personal not in caplog.text


# --- SMS backends ------------------------------------------------------------------------


def test_console_backend_prints_the_message() -> None:
    stream = io.StringIO()
    sms.ConsoleBackend(stream=stream).send(sms.SmsMessage(to="+12125550100", body="Hello"))
    assert "SMS to: +12125550100" in stream.getvalue() and "Hello" in stream.getvalue()


class _FakeTwilio(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        form = parse_qs(self.rfile.read(length).decode())
        _FakeTwilio.received.append(
            {"path": self.path, "auth": self.headers["Authorization"], "form": form}
        )
        body = json.dumps({"sid": "SM0123456789abcdef0123456789abcdef", "status": "queued",
                           "to": form["To"][0], "body": form["Body"][0]}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fake_twilio() -> Iterator[str]:
    _FakeTwilio.received = []
    server = HTTPServer(("127.0.0.1", 0), _FakeTwilio)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_twilio_backend_posts_the_message_to_the_messages_api(fake_twilio: str) -> None:
    backend = sms.TwilioBackend(account_sid="AC" + "1" * 32, auth_token="secret-token",
                                from_number="+15005550006", api_base_url=fake_twilio)
    sid = backend.send(sms.SmsMessage(to="+12125550100", body="Your visit is booked."))
    assert sid == "SM0123456789abcdef0123456789abcdef"
    [request] = _FakeTwilio.received
    assert request["path"] == f"/2010-04-01/Accounts/AC{'1' * 32}/Messages.json"
    assert request["form"] == {"To": ["+12125550100"], "From": ["+15005550006"],
                               "Body": ["Your visit is booked."]}
    user, password = base64.b64decode(request["auth"].split()[1]).decode().split(":")
    assert (user, password) == ("AC" + "1" * 32, "secret-token")


def test_twilio_backend_is_chosen_when_credentials_are_set() -> None:
    with override_settings(SMS_BACKEND="booking.sms.TwilioBackend", TWILIO_ACCOUNT_SID="AC1",
                           TWILIO_AUTH_TOKEN="t", TWILIO_FROM_NUMBER="+15005550006"):
        assert isinstance(sms.get_backend(), sms.TwilioBackend)
    with override_settings(TWILIO_ACCOUNT_SID=""), pytest.raises(sms.SmsError):
        sms.TwilioBackend()


# --- iCalendar ---------------------------------------------------------------------------


def test_calendar_feed_lists_every_appointment_and_marks_cancelled_ones(
    shop: Shop, with_address: BusinessProfile
) -> None:
    first = book(shop, "Cleaning", local(*TUESDAY, 9))
    second = book(shop, "Checkup", local(*TUESDAY, 11),
                  customer=customer_details_clean(name="Bo Smith", phone="+12125550155"))
    appointment_cancel(appointment=second, by_customer=False)
    appointments = Appointment.objects.select_related("service", "staff", "customer")
    feed = ics.calendar_feed(appointments, name="Test Dental")
    calendar = icalendar.Calendar.from_ical(feed)
    assert str(calendar["X-WR-CALNAME"]) == "Test Dental"
    events = {str(e["UID"]).split(".")[0]: e for e in calendar.walk("VEVENT")}
    assert set(events) == {first.reference, second.reference}
    assert str(events[first.reference]["STATUS"]) == "CONFIRMED"
    assert str(events[second.reference]["STATUS"]) == "CANCELLED"
    # The business's own feed names the customer; the customer's copy does not need to.
    assert "Ada Lovelace" in str(events[first.reference]["SUMMARY"])
    customer_copy = icalendar.Calendar.from_ical(ics.appointment_ics(first))
    assert str(customer_copy.walk("VEVENT")[0]["SUMMARY"]) == "Cleaning at Test Dental"


def test_event_uids_differ_between_businesses_with_the_same_reference(
    make_shop: MakeShop, frozen: time_machine.Traveller
) -> None:
    uids = []
    for _ in range(2):
        other = make_shop()
        with tenant_context(other.tenant):
            appointment = book(other, "Cleaning", local(*TUESDAY, 9))
            Appointment.objects.filter(pk=appointment.pk).update(reference="AAA-AAA")
            appointment.refresh_from_db()
            uids.append(ics.event_uid(appointment))
    assert uids[0] != uids[1]
    assert all(uid.startswith("AAA-AAA.") for uid in uids)
