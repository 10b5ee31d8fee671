"""Reminders: scheduled at the business's offsets, moved with the appointment, dropped on cancel.

Time moves with time-machine and the real task worker runs what is due, so a
reminder goes out exactly when its ``run_after`` is reached.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from booking import sms
from booking.models import Notification
from booking.notifications import notification_schedule
from booking.selectors import profile_get
from booking.services import appointment_cancel, appointment_reschedule
from tests.booking.conftest import Shop, local
from tests.booking.test_notifications import ADA_PHONE, book, run_worker, use_locmem_sms

TUESDAY = (2026, 3, 10)
WEDNESDAY = (2026, 3, 11)


@pytest.fixture
def texts(settings: Any) -> list[sms.SmsMessage]:
    return use_locmem_sms(settings)


def reminders(**filters: Any) -> list[tuple[datetime, str, str]]:
    return sorted(
        Notification.objects.filter(kind="reminder", **filters)
        .values_list("scheduled_for", "channel", "status")
    )


def reminder_texts(outbox: list[sms.SmsMessage]) -> list[str]:
    return [m.body for m in outbox if m.to == ADA_PHONE and "a reminder of" in m.body]


def test_reminders_are_scheduled_at_the_offsets_and_sent_on_time(
    shop: Shop, texts: list[sms.SmsMessage], mailoutbox: list[Any],
    frozen: time_machine.Traveller,
) -> None:
    appointment = book(shop, "Cleaning", local(*TUESDAY, 9))
    day_before = appointment.start - timedelta(hours=24)
    two_hours = appointment.start - timedelta(hours=2)
    assert reminders() == [
        (day_before, "email", "scheduled"), (day_before, "sms", "scheduled"),
        (two_hours, "email", "scheduled"), (two_hours, "sms", "scheduled"),
    ]
    assert set(Notification.objects.filter(kind="reminder").values_list("for_start", flat=True)
               ) == {appointment.start}

    run_worker()  # the confirmation only
    frozen.move_to(day_before - timedelta(minutes=1))
    run_worker()
    assert reminder_texts(texts) == []

    frozen.move_to(day_before)
    run_worker()
    [text] = reminder_texts(texts)
    assert "Cleaning with Ana on Tue Mar 10, 9:00 AM" in text
    assert [m.subject for m in mailoutbox if m.subject.startswith("Reminder")] == [
        "Reminder: Cleaning on Tue Mar 10, 9:00 AM (Test Dental)"]
    assert reminders(status="sent") == [(day_before, "email", "sent"), (day_before, "sms", "sent")]

    frozen.move_to(two_hours)
    run_worker()
    assert len(reminder_texts(texts)) == 2
    assert {status for _, _, status in reminders()} == {"sent"}


def test_only_future_reminders_are_scheduled(shop: Shop, texts: list[sms.SmsMessage]) -> None:
    # NOW is Monday 08:00 in New York; an 11:00 appointment is 3 hours away.
    appointment = book(shop, "Checkup", local(2026, 3, 2, 11))
    assert reminders() == [
        (appointment.start - timedelta(hours=2), "email", "scheduled"),
        (appointment.start - timedelta(hours=2), "sms", "scheduled"),
    ]


def test_business_offsets_decide_the_reminders(shop: Shop, texts: list[sms.SmsMessage]) -> None:
    profile = profile_get()
    profile.reminder_offsets_minutes = [2880, 30]
    profile.save()
    appointment = book(shop, "Checkup", local(*TUESDAY, 10))
    assert sorted({when for when, _, _ in reminders()}) == [
        appointment.start - timedelta(days=2), appointment.start - timedelta(minutes=30)]


def test_rescheduling_skips_old_reminders_and_sends_new_ones(
    shop: Shop, texts: list[sms.SmsMessage], frozen: time_machine.Traveller
) -> None:
    appointment = book(shop, "Cleaning", local(*TUESDAY, 9))
    old_start = appointment.start
    moved = appointment_reschedule(appointment=appointment, new_start=local(*WEDNESDAY, 14),
                                   by_customer=True)
    assert moved.start == datetime(2026, 3, 11, 18, 0, tzinfo=UTC)
    old = Notification.objects.filter(kind="reminder", for_start=old_start)
    assert set(old.values_list("status", "last_error")) == {("skipped", "appointment moved")}
    new = Notification.objects.filter(kind="reminder", for_start=moved.start)
    assert sorted(set(new.values_list("scheduled_for", flat=True))) == [
        moved.start - timedelta(hours=24), moved.start - timedelta(hours=2)]
    assert set(new.values_list("status", flat=True)) == {"scheduled"}

    run_worker()
    frozen.move_to(old_start - timedelta(hours=2))  # past both old reminder times
    run_worker()
    assert reminder_texts(texts) == []

    frozen.move_to(moved.start - timedelta(hours=2))
    run_worker()
    assert len(reminder_texts(texts)) == 2
    assert all("Wed Mar 11, 2:00 PM" in text for text in reminder_texts(texts))
    assert set(new.values_list("status", flat=True)) == {"sent"}


def test_cancelling_drops_the_reminders(
    shop: Shop, texts: list[sms.SmsMessage], mailoutbox: list[Any],
    frozen: time_machine.Traveller,
) -> None:
    appointment = book(shop, "Cleaning", local(*TUESDAY, 9))
    appointment_cancel(appointment=appointment, by_customer=True)
    assert {status for _, _, status in reminders()} == {"skipped"}
    frozen.move_to(appointment.start)
    run_worker()
    assert reminder_texts(texts) == []
    assert not any(m.subject.startswith("Reminder") for m in mailoutbox)


def test_a_reminder_rechecks_the_appointment_when_it_runs(
    shop: Shop, texts: list[sms.SmsMessage], frozen: time_machine.Traveller
) -> None:
    """A reminder left scheduled for a start the appointment no longer has is skipped."""
    appointment = book(shop, "Cleaning", local(*TUESDAY, 9))
    stale_start = appointment.start - timedelta(hours=1)
    stale = notification_schedule(
        kind="reminder", channel="sms", recipient=ADA_PHONE, dedupe_key="stale-reminder",
        scheduled_for=datetime.now(UTC) + timedelta(hours=1), appointment=appointment,
        for_start=stale_start,
    )
    frozen.move_to(stale.scheduled_for)
    run_worker()
    stale.refresh_from_db()
    assert (stale.status, stale.last_error, stale.attempts) == ("skipped", "appointment moved", 0)
    assert reminder_texts(texts) == []


def test_moving_back_to_an_earlier_time_reschedules_its_reminders(
    shop: Shop, texts: list[sms.SmsMessage], frozen: time_machine.Traveller
) -> None:
    appointment = book(shop, "Cleaning", local(*TUESDAY, 9))
    appointment_reschedule(appointment=appointment, new_start=local(*WEDNESDAY, 14),
                           by_customer=True)
    back = appointment_reschedule(appointment=appointment, new_start=local(*TUESDAY, 9),
                                  by_customer=True)
    assert back.start == appointment.start
    assert len(reminders(for_start=back.start, status="scheduled")) == 4
    frozen.move_to(back.start - timedelta(hours=24))
    run_worker()
    [text] = reminder_texts(texts)
    assert "Tue Mar 10, 9:00 AM" in text
