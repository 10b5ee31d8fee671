"""The waitlist: join, freed slot -> offer or automatic booking, accept, expire, next in line."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client

from booking import errors, sms
from booking.models import Appointment, Notification, WaitlistEntry
from booking.selectors import profile_get
from booking.services import (
    CustomerDetails,
    appointment_cancel,
    appointment_reschedule,
    customer_details_clean,
)
from booking.waitlist import (
    AlreadyWaiting,
    OfferExpired,
    offer_path_for,
    waitlist_accept,
    waitlist_join,
    waitlist_remove,
)
from tenants.context import tenant_context
from tests.booking.conftest import NOW, MakeShop, Shop, local
from tests.booking.test_notifications import book, run_worker, use_locmem_sms

TUESDAY = (2026, 3, 10)
BOB_PHONE, CAROL_PHONE = "+12125550111", "+12125550122"
TUESDAY_MORNING = [{"date": "2026-03-10", "start": "08:00", "end": "12:00"}]


@pytest.fixture
def texts(settings: Any) -> list[sms.SmsMessage]:
    return use_locmem_sms(settings)


def bob() -> CustomerDetails:
    return customer_details_clean(name="Bob Stone", phone=BOB_PHONE, email="bob@example.com")


def carol() -> CustomerDetails:
    return customer_details_clean(name="Carol Reyes", phone=CAROL_PHONE)


def join(shop: Shop, customer: CustomerDetails, service: str = "Cleaning",
         **kwargs: Any) -> WaitlistEntry:
    kwargs.setdefault("windows", TUESDAY_MORNING)
    return waitlist_join(customer=customer, service_id=shop.services[service], **kwargs)


def offer_link(outbox: list[sms.SmsMessage], phone: str) -> str:
    """The path of the confirmation link in the last offer texted to ``phone``."""
    bodies = [m.body for m in outbox if m.to == phone and "held for you" in m.body]
    assert bodies, f"no offer was texted to {phone}"
    match = re.search(r"https?://[^/\s]+(/b/[^\s]+/waitlist/[^\s/]+/)", bodies[-1])
    assert match is not None
    return match[1]


def accept_over_http(path: str) -> Any:
    """A customer opening the link and pressing the button, CSRF checks on."""
    client = Client(enforce_csrf_checks=True)
    page = client.get(path)
    assert page.status_code == 200
    token = client.cookies["csrftoken"].value
    return client.post(path, {"csrfmiddlewaretoken": token})


@pytest.fixture
def taken(shop: Shop) -> Appointment:
    """Ada holds Tuesday 9:00 with Ana: the slot the waitlist wants."""
    return book(shop, "Cleaning", local(*TUESDAY, 9))


# --- joining -----------------------------------------------------------------------------


def test_starter_plan_refuses_the_waitlist(make_shop: MakeShop, frozen: Any) -> None:
    starter = make_shop(plan="starter")
    with tenant_context(starter.tenant), pytest.raises(errors.FeatureNotInPlan) as caught:
        join(starter, bob())
    assert caught.value.code == "feature_not_in_plan" and caught.value.http_status == 403
    with tenant_context(starter.tenant):
        assert WaitlistEntry.objects.count() == 0


def test_standard_plan_may_join(make_shop: MakeShop, frozen: Any) -> None:
    standard = make_shop(plan="standard")
    with tenant_context(standard.tenant):
        entry = join(standard, bob(), staff_id=standard.staff["Ana"], auto_book=True)
        assert (entry.status, entry.auto_book, entry.staff_id) == (
            "waiting", True, standard.staff["Ana"])
        assert entry.customer.phone == BOB_PHONE


def test_a_second_waiting_entry_for_the_same_service_is_refused(shop: Shop) -> None:
    join(shop, bob())
    with pytest.raises(AlreadyWaiting) as caught:
        join(shop, bob(), windows=None)
    assert caught.value.http_status == 409
    # Another service is a different wish.
    join(shop, bob(), service="Checkup")
    assert WaitlistEntry.objects.count() == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"windows": [{"date": "2026-03-10", "start": "12:00", "end": "09:00"}]}, "windows"),
        ({"windows": [{"date": "10/03/2026", "start": "09:00", "end": "12:00"}]}, "windows"),
        ({"windows": [{"day": "2026-03-10"}]}, "windows"),
        ({"windows": None, "latest": NOW - timedelta(hours=1)}, "latest"),
        ({"windows": None, "earliest": datetime(2026, 3, 10, 9)}, "earliest"),
        ({"staff_id": 10_000}, "staff"),
    ],
)
def test_join_refuses_bad_input(shop: Shop, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(errors.InvalidInput) as caught:
        join(shop, bob(), **kwargs)
    assert caught.value.field == field


def test_join_refuses_staff_who_do_not_offer_the_service(shop: Shop) -> None:
    with pytest.raises(errors.InvalidInput, match="does not offer"):
        join(shop, bob(), staff_id=shop.staff["Ben"])


# --- cancel -> offer -> accept -----------------------------------------------------------


def test_cancellation_offers_the_slot_and_the_customer_accepts_it(
    shop: Shop, taken: Appointment, texts: list[sms.SmsMessage], mailoutbox: list[Any]
) -> None:
    entry = join(shop, bob())
    appointment_cancel(appointment=taken, by_customer=True)
    run_worker()

    entry.refresh_from_db()
    assert entry.status == "offered"
    assert entry.offered_start == taken.start and entry.offered_staff_id == shop.staff["Ana"]
    assert entry.offer_expires_at == NOW + timedelta(minutes=15)
    [offer_sms] = [m.body for m in texts if m.to == BOB_PHONE]
    assert "Cleaning slot with Ana opened on Tue Mar 10, 9:00 AM" in offer_sms
    assert "held for you until 7:15 AM" in offer_sms
    assert any(m.to == ["bob@example.com"] and "A time opened up" in m.subject
               for m in mailoutbox)

    path = offer_link(texts, BOB_PHONE)
    client = Client(enforce_csrf_checks=True)
    page = client.get(path)
    assert page.status_code == 200
    assert b"Book this time" in page.content and b"7:15 AM" in page.content
    assert client.post(path, {}).status_code == 403  # no CSRF token, nothing booked
    entry.refresh_from_db()
    assert entry.status == "offered"

    response = client.post(path, {"csrfmiddlewaretoken": client.cookies["csrftoken"].value})
    assert response.status_code == 303 and response["Location"] == path
    entry.refresh_from_db()
    assert entry.status == "booked"
    appointment = entry.appointment
    assert appointment is not None
    assert (appointment.customer.phone, appointment.start, appointment.channel) == (
        BOB_PHONE, taken.start, "waitlist")
    done = client.get(path)
    assert b"You are booked" in done.content and appointment.reference.encode() in done.content

    mailoutbox.clear()
    run_worker()
    [booked_email] = [m for m in mailoutbox if m.to == ["bob@example.com"]]
    assert booked_email.subject.startswith("Booked from the waitlist: Cleaning")
    assert booked_email.attachments[0][0] == "appointment.ics"
    log = Notification.objects.filter(waitlist_entry=entry)
    assert sorted(log.values_list("kind", "channel", "status")) == [
        ("waitlist_booked", "email", "sent"), ("waitlist_booked", "sms", "sent"),
        ("waitlist_offer", "email", "sent"), ("waitlist_offer", "sms", "sent"),
    ]
    # The waitlist's own message replaces the ordinary confirmation.
    assert not Notification.objects.filter(appointment=appointment, kind="confirmation").exists()


def test_accepting_twice_books_once(shop: Shop, taken: Appointment,
                                    texts: list[sms.SmsMessage]) -> None:
    entry = join(shop, bob())
    appointment_cancel(appointment=taken, by_customer=True)
    run_worker()
    entry.refresh_from_db()
    first = waitlist_accept(entry=entry)
    second = waitlist_accept(entry=entry)
    assert first.pk == second.pk
    assert Appointment.objects.filter(status="booked").count() == 1


# --- expiry ------------------------------------------------------------------------------


def test_an_expired_offer_goes_to_the_next_in_line(
    shop: Shop, taken: Appointment, texts: list[sms.SmsMessage],
    frozen: time_machine.Traveller,
) -> None:
    first = join(shop, bob())
    frozen.shift(timedelta(minutes=1))
    second = join(shop, carol())
    appointment_cancel(appointment=taken, by_customer=True)
    run_worker()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("offered", "waiting")
    assert first.offer_expires_at is not None
    bob_link = offer_link(texts, BOB_PHONE)

    frozen.move_to(first.offer_expires_at - timedelta(seconds=1))
    run_worker()
    first.refresh_from_db()
    assert first.status == "offered"

    frozen.move_to(first.offer_expires_at)
    run_worker()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("expired", "offered")
    assert second.offered_start == taken.start
    assert second.offer_expires_at == datetime.now(UTC) + timedelta(minutes=15)
    offer_link(texts, CAROL_PHONE)

    # Bob's link now says so, and cannot book.
    client = Client()
    assert b"This offer has expired" in client.get(bob_link).content
    late = client.post(bob_link)
    assert late.status_code == 410 and b"has expired" in late.content
    with pytest.raises(OfferExpired):
        waitlist_accept(entry=first)
    assert not Appointment.objects.filter(status="booked").exists()


# --- automatic booking -------------------------------------------------------------------


def test_consenting_customer_is_booked_straight_away(
    shop: Shop, taken: Appointment, texts: list[sms.SmsMessage]
) -> None:
    entry = join(shop, bob(), auto_book=True)
    appointment_cancel(appointment=taken, by_customer=True)
    run_worker()
    entry.refresh_from_db()
    assert entry.status == "booked" and entry.appointment is not None
    assert entry.appointment.start == taken.start and entry.appointment.channel == "waitlist"
    [text] = [m.body for m in texts if m.to == BOB_PHONE]
    assert "a time opened up and your Cleaning with Ana is booked for Tue Mar 10" in text
    assert not Notification.objects.filter(kind="waitlist_offer").exists()
    assert Notification.objects.filter(waitlist_entry=entry, kind="waitlist_booked",
                                       status="sent").count() == 2
    # The booking has its reminders like any other.
    assert Notification.objects.filter(appointment=entry.appointment, kind="reminder").count() == 4


# --- the slot was taken meanwhile --------------------------------------------------------


def test_accepting_after_someone_else_booked_says_so_and_keeps_waiting(
    shop: Shop, taken: Appointment, texts: list[sms.SmsMessage]
) -> None:
    entry = join(shop, bob())
    appointment_cancel(appointment=taken, by_customer=True)
    run_worker()
    path = offer_link(texts, BOB_PHONE)
    walk_in = customer_details_clean(name="Dee Walker", phone="+12125550133")
    book(shop, "Cleaning", taken.start, customer=walk_in)

    response = accept_over_http(path)
    assert response.status_code == 409
    assert b"someone else booked that time before you confirmed" in response.content
    assert b"still on the waitlist" in response.content
    entry.refresh_from_db()
    assert (entry.status, entry.offered_start, entry.appointment) == ("waiting", None, None)
    booked = Appointment.objects.filter(status="booked", start=taken.start)
    assert [a.customer.phone for a in booked] == ["+12125550133"]


# --- which freed slots go to whom --------------------------------------------------------


def test_rescheduling_frees_the_old_time_for_the_waitlist(
    shop: Shop, taken: Appointment, texts: list[sms.SmsMessage]
) -> None:
    entry = join(shop, bob())
    old_start = taken.start
    appointment_reschedule(appointment=taken, new_start=local(2026, 3, 11, 10), by_customer=True)
    run_worker()
    entry.refresh_from_db()
    assert entry.status == "offered" and entry.offered_start == old_start


def test_slots_outside_the_wish_are_not_offered(
    shop: Shop, taken: Appointment, texts: list[sms.SmsMessage]
) -> None:
    afternoon = join(shop, bob(), windows=[{"date": "2026-03-10", "start": "13:00",
                                            "end": "17:00"}])
    with_ben = join(shop, carol(), service="Checkup", windows=None, staff_id=shop.staff["Ben"])
    late = waitlist_join(customer=customer_details_clean(name="Eve Park", phone="+12125550144"),
                         service_id=shop.services["Cleaning"],
                         earliest=local(*TUESDAY, 10), latest=local(*TUESDAY, 17))
    checkup = book(shop, "Checkup", local(*TUESDAY, 11),
                   customer=customer_details_clean(name="Fay", phone="+12125550166"))
    appointment_cancel(appointment=taken, by_customer=True)
    appointment_cancel(appointment=checkup, by_customer=True)  # Ana's, not Ben's
    run_worker()
    for entry in (afternoon, with_ben, late):
        entry.refresh_from_db()
        assert entry.status == "waiting"
    assert not Notification.objects.filter(kind="waitlist_offer").exists()


def test_removed_entries_and_downgraded_plans_get_no_offer(
    shop: Shop, taken: Appointment, texts: list[sms.SmsMessage]
) -> None:
    removed = join(shop, bob())
    waitlist_remove(entry=removed)
    waiting = join(shop, carol())
    shop.tenant.plan = "starter"
    shop.tenant.save(update_fields=["plan"])
    appointment_cancel(appointment=taken, by_customer=True)
    run_worker()
    removed.refresh_from_db()
    waiting.refresh_from_db()
    assert (removed.status, waiting.status) == ("removed", "waiting")


# --- links are the business's own --------------------------------------------------------


def test_an_offer_link_does_not_work_at_another_business(
    shop: Shop, taken: Appointment, make_shop: MakeShop, texts: list[sms.SmsMessage]
) -> None:
    entry = join(shop, bob())
    appointment_cancel(appointment=taken, by_customer=True)
    run_worker()
    entry.refresh_from_db()
    path = offer_path_for(entry)
    other = make_shop()
    with tenant_context(other.tenant):
        # The other business has an entry with the same id, offered too.
        other_entry = join(other, bob())
        assert other_entry.pk == entry.pk
    foreign = path.replace(f"/b/{shop.tenant.slug}/", f"/b/{other.tenant.slug}/")
    client = Client()
    assert client.get(foreign).status_code == 404
    assert client.post(foreign).status_code == 404
    assert client.get(f"/b/{shop.tenant.slug}/waitlist/not-a-token/").status_code == 404
    assert client.get(path).status_code == 200
    with tenant_context(other.tenant):
        other_entry.refresh_from_db()
        assert other_entry.status == "waiting"
    entry.refresh_from_db()
    assert entry.status == "offered"


def test_the_hold_ends_when_the_slot_stops_being_bookable(
    shop: Shop, texts: list[sms.SmsMessage]
) -> None:
    # NOW is Monday 07:00 in New York: a 09:00 slot is two hours away.
    soon = book(shop, "Cleaning", local(2026, 3, 2, 9))
    profile = profile_get()
    profile.min_notice_minutes = 110
    profile.save()
    entry = join(shop, bob(), windows=[{"date": "2026-03-02", "start": "09:00", "end": "12:00"}])
    appointment_cancel(appointment=soon, by_customer=False)
    run_worker()
    entry.refresh_from_db()
    assert entry.status == "offered"
    assert entry.offer_expires_at == NOW + timedelta(minutes=10)  # not the 15-minute hold
