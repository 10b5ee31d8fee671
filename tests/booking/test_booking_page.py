"""The customer booking page at /b/<slug>/: choose, book, confirm, manage, without JavaScript."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client
from icalendar import Calendar

from billing import plans
from booking.models import Appointment, Customer, WaitlistEntry
from booking.selectors import slots_search
from booking.services import appointment_book
from booking.tokens import manage_path_for
from tenants.context import tenant_context
from tenants.services import tenant_set_status
from tests.booking.conftest import MakeShop, Shop, ada, base_setup, local

TUESDAY = (2026, 3, 10)


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def biz(make_shop: MakeShop, frozen: Any) -> Shop:
    """The base business; requests bring their own tenant context."""
    return make_shop()


def page(shop: Shop, **query: object) -> str:
    path = f"/b/{shop.tenant.slug}/"
    return f"{path}?{urlencode(query)}" if query else path


def details(shop: Shop, **overrides: object) -> dict[str, object]:
    return {
        "service": shop.services["Checkup"],
        "staff": "",
        "start": local(*TUESDAY, 9).isoformat(),
        "key": uuid.uuid4().hex,
        "name": "Ada Lovelace",
        "phone": "+1 212 555 0100",
        "email": "ada@example.com",
    } | overrides


def submit(client: Client, shop: Shop, data: dict[str, object]) -> Any:
    return client.post(f"/b/{shop.tenant.slug}/book/", data)


def written(shop: Shop) -> tuple[int, int]:
    with tenant_context(shop.tenant):
        return Appointment.objects.count(), Customer.objects.count()


def appointments(shop: Shop) -> list[Appointment]:
    with tenant_context(shop.tenant):
        return list(Appointment.objects.select_related("service", "staff", "customer"))


def text(response: Any) -> str:
    """The page's visible words, tags stripped, whitespace collapsed."""
    html = response.content.decode()
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def hrefs(response: Any, css_class: str) -> list[str]:
    pattern = rf'<a class="{css_class}[^"]*" href="([^"]+)"'
    return [unescape(h) for h in re.findall(pattern, response.content.decode())]


def manage_path(shop: Shop, appointment: Appointment) -> str:
    with tenant_context(shop.tenant):
        return manage_path_for(appointment)


# --- choosing -------------------------------------------------------------------------


def test_page_shows_the_business_and_its_services(client: Client, biz: Shop) -> None:
    response = client.get(page(biz))
    assert response.status_code == 200
    words = text(response)
    assert "Test Dental" in words
    for name, meta in (("Cleaning", "60 min · $120.00"), ("Checkup", "30 min · $80.00"),
                       ("Whitening", "90 min · $350.00")):
        assert f"{name} {meta}" in words
    # The chat widget will mount on this hook.
    launcher = f'<div id="chat-launcher" data-business="{biz.tenant.slug}">'
    assert launcher in response.content.decode()


def test_choosing_a_service_offers_its_staff_and_the_first_free_day(
    client: Client, biz: Shop
) -> None:
    response = client.get(page(biz, service=biz.services["Cleaning"]))
    assert response.status_code == 200
    words = text(response)
    # Only Ana does cleanings; "Anyone" is the default choice.
    assert "Anyone Ana" in words and "Ben" not in words
    assert 'aria-current="true">Anyone<' in response.content.decode()
    # NOW is Monday 07:00 in New York: Monday's 09:00 is the first time (zone labelled).
    assert "Free times on Monday 2 March New York time (EST)" in words
    slots = hrefs(response, "slot")
    first = parse_qs(urlsplit(slots[0]).query)
    assert first["start"] == ["2026-03-02T09:00:00-05:00"]
    assert first["service"] == [str(biz.services["Cleaning"])]
    # Two weeks of days; the closed training day (Friday 13) is not a link.
    days = hrefs(response, "day")
    assert len(days) == 11  # 14 days less two Saturdays and the training day
    assert not any("date=2026-03-13" in d for d in days)
    assert "Friday 13 March, fully booked or closed" in response.content.decode()


def test_a_chosen_day_lists_its_times_in_local_time_after_the_dst_change(
    client: Client, biz: Shop
) -> None:
    response = client.get(page(biz, service=biz.services["Checkup"],
                               staff=biz.staff["Ben"], date="2026-03-10"))
    assert response.status_code == 200
    words = text(response)
    assert "Free times on Tuesday 10 March New York time (EDT)" in words
    starts = [parse_qs(urlsplit(h).query)["start"][0] for h in hrefs(response, "slot")]
    assert starts[0] == "2026-03-10T09:00:00-04:00"
    assert "2026-03-10T12:00:00-04:00" not in starts  # lunch break
    assert all(parse_qs(urlsplit(h).query)["staff"] == [str(biz.staff["Ben"])]
               for h in hrefs(response, "slot"))
    assert "9:00 AM" in words and "4:30 PM" in words


def test_days_page_through_the_booking_window(client: Client, biz: Shop) -> None:
    service = biz.services["Checkup"]
    first = client.get(page(biz, service=service))
    assert "Earlier" not in text(first)
    later = re.search(r'href="([^"]+)">Later', first.content.decode())
    assert later is not None
    second = client.get(unescape(later.group(1)))
    assert second.status_code == 200
    assert "Free times on Monday 16 March" in text(second)
    assert "Earlier" in text(second)
    # max_days_ahead is 60: the window ends on 1 May and there is no later page.
    last = client.get(page(biz, service=service, **{"from": "2026-04-27"}))
    days = [parse_qs(urlsplit(h).query)["date"][0] for h in hrefs(last, "day")]
    assert days[-1] <= "2026-05-01"
    assert "Later" not in text(last)


@pytest.mark.parametrize("query", [{"service": "999"}, {"service": "abc"}])
def test_an_unknown_service_in_the_address_shows_the_list_again(
    client: Client, biz: Shop, query: dict[str, str]
) -> None:
    response = client.get(page(biz, **query))
    assert response.status_code == 400
    assert "That service is not available" in text(response)
    assert "Cleaning" in text(response)


# --- the whole booking ------------------------------------------------------------------


def test_customer_books_downloads_the_calendar_file_and_cancels(
    client: Client, biz: Shop
) -> None:
    # Choose a service, take the first time on Tuesday.
    choose = client.get(page(biz, service=biz.services["Checkup"], date="2026-03-10"))
    details_url = hrefs(choose, "slot")[0]
    form_page = client.get(details_url)
    assert form_page.status_code == 200
    assert "Tuesday 10 March 2026 , 9:00 AM EDT" in text(form_page)
    key = re.search(r'name="key" value="([0-9a-f]{32})"', form_page.content.decode())
    assert key is not None

    response = submit(client, biz, details(biz, key=key.group(1)))
    assert response.status_code == 303
    [appointment] = appointments(biz)
    assert appointment.channel == "web"
    assert appointment.customer.phone == "+12125550100"
    assert appointment.start == local(*TUESDAY, 9)
    done_url = response["Location"]
    assert done_url.startswith(f"/b/{biz.tenant.slug}/booked/{appointment.reference}/?t=")

    done = client.get(done_url)
    assert done.status_code == 200
    words = text(done)
    assert appointment.reference in words
    assert "Checkup" in words and appointment.staff.name in words
    assert "Tuesday 10 March 2026 , 9:00 AM EDT" in words

    calendar_link = re.search(r'href="([^"]+\.ics)"', done.content.decode())
    assert calendar_link is not None
    download = client.get(unescape(calendar_link.group(1)))
    assert download.status_code == 200
    assert download["Content-Type"].startswith("text/calendar")
    assert "attachment" in download["Content-Disposition"]
    [event] = Calendar.from_ical(download.content).walk("VEVENT")
    assert event.decoded("dtstart") == local(*TUESDAY, 9)
    assert event.decoded("dtend") == local(*TUESDAY, 9, 30)
    assert "Checkup" in str(event["summary"])
    assert appointment.reference in str(event["description"])

    link = re.search(r'href="([^"]+)" id="manage-link"', done.content.decode())
    assert link is not None
    manage_url = unescape(link.group(1))
    assert manage_url.startswith(f"/b/{biz.tenant.slug}/manage/")
    manage = client.get(manage_url)
    assert manage.status_code == 200
    assert appointment.reference in text(manage) and "Booked" in text(manage)
    # Personal details behind a secret link: no cache keeps a copy.
    assert "no-store" in manage["Cache-Control"] and "private" in manage["Cache-Control"]

    confirm = client.get(f"{manage_url}cancel/")
    assert confirm.status_code == 200
    assert "Cancel this appointment?" in text(confirm)
    cancelled = client.post(f"{manage_url}cancel/")
    assert cancelled.status_code == 303
    assert cancelled["Location"] == manage_url
    after = client.get(manage_url)
    assert "Cancelled" in text(after)
    assert "This appointment was cancelled" in text(after)
    assert "Cancel appointment" not in text(after)
    assert appointments(biz)[0].status == "cancelled"
    # The time is free again.
    again = client.get(page(biz, service=biz.services["Checkup"], date="2026-03-10"))
    assert details_url in hrefs(again, "slot")


def test_submitting_the_same_form_twice_books_once(client: Client, biz: Shop) -> None:
    data = details(biz)
    first = submit(client, biz, data)
    second = submit(client, biz, data)
    assert first.status_code == second.status_code == 303
    assert first["Location"].split("?")[0] == second["Location"].split("?")[0]
    assert written(biz) == (1, 1)


def test_a_named_staff_member_is_booked(client: Client, biz: Shop) -> None:
    response = submit(client, biz, details(biz, staff=biz.staff["Ben"]))
    assert response.status_code == 303
    assert appointments(biz)[0].staff.name == "Ben"


def test_slot_taken_between_viewing_and_confirming_offers_fresh_times(
    client: Client, biz: Shop
) -> None:
    start = local(*TUESDAY, 9)
    form_page = client.get(f"/b/{biz.tenant.slug}/book/?"
                           + urlencode({"service": biz.services["Cleaning"],
                                        "start": start.isoformat()}))
    assert form_page.status_code == 200
    with tenant_context(biz.tenant):
        appointment_book(service_id=biz.services["Cleaning"], start=start,
                         customer=ada("+12125550199"), channel="api")

    response = submit(client, biz, details(biz, service=biz.services["Cleaning"]))
    assert response.status_code == 409
    words = text(response)
    assert "That time was just taken, please pick another" in words
    fresh = re.findall(r'name="start" value="([^"]+)"', response.content.decode())
    assert fresh and start.isoformat() not in fresh
    assert fresh[0] == "2026-03-10T10:15:00-04:00"  # after the hour and its 10-minute buffer
    # The typed details are kept for the second try.
    assert 'value="Ada Lovelace"' in response.content.decode()
    assert [a.customer.phone for a in appointments(biz)] == ["+12125550199"]

    retry = submit(client, biz, details(biz, service=biz.services["Cleaning"], start=fresh[0]))
    assert retry.status_code == 303
    assert written(biz) == (2, 2)


def test_a_details_link_for_a_time_no_longer_free_says_so(client: Client, biz: Shop) -> None:
    start = local(*TUESDAY, 9)
    with tenant_context(biz.tenant):
        appointment_book(service_id=biz.services["Cleaning"], start=start,
                         customer=ada(), channel="api")
    response = client.get(f"/b/{biz.tenant.slug}/book/?"
                          + urlencode({"service": biz.services["Cleaning"],
                                       "start": start.isoformat()}))
    assert response.status_code == 200
    assert "That time is no longer available" in text(response)
    assert 'name="start" value="2026-03-10T10:15:00-04:00"' in response.content.decode()


@pytest.mark.parametrize(
    ("overrides", "status", "message"),
    [
        ({"name": ""}, 400, "Please give your name."),
        ({"phone": "12"}, 400, "That phone number is not valid."),
        ({"phone": "call me"}, 400, "not a phone number we can read"),
        ({"email": "not-an-email"}, 400, "Enter a valid email address."),
        ({"service": "9999"}, 400, "Please choose one of the services listed."),
        ({"service": "x"}, 400, "Please choose one of the services listed."),
        ({"start": "tomorrow at nine"}, 400, "Please pick one of the times listed."),
        ({"start": "2026-03-10T09:00:00"}, 400, "Please pick one of the times listed."),
        ({"start": ""}, 400, "Please pick a time."),
        ({"key": "replayed"}, 400, "Please reload the page and try again."),
        ({"start": local(*TUESDAY, 9, 7).isoformat()}, 422, "Appointments start on the times"),
        ({"start": local(*TUESDAY, 12).isoformat()}, 422, "outside our working hours"),
        ({"start": local(2026, 3, 13, 9).isoformat()}, 422, "We are closed at that time."),
        ({"start": local(2026, 9, 1, 9).isoformat()}, 422, "too far ahead"),
    ],
)
def test_bad_input_is_refused_on_the_form_and_nothing_is_written(
    client: Client, biz: Shop, overrides: dict[str, object], status: int, message: str
) -> None:
    response = submit(client, biz, details(biz, **overrides))
    assert response.status_code == status
    assert message in text(response)
    assert written(biz) == (0, 0)


def test_staff_who_does_not_offer_the_service_is_refused(client: Client, biz: Shop) -> None:
    response = submit(client, biz, details(biz, service=biz.services["Cleaning"],
                                           staff=biz.staff["Ben"]))
    assert response.status_code == 400
    assert "Please choose someone who offers this service." in text(response)
    assert written(biz) == (0, 0)


def test_a_service_of_another_business_is_refused(
    client: Client, biz: Shop, make_shop: MakeShop
) -> None:
    setup = base_setup()
    setup["services"].append({"name": "Braces", "duration_minutes": 30, "price": "900.00",
                              "buffer_before_minutes": 0, "buffer_after_minutes": 0,
                              "description": ""})
    setup["staff"][0]["services"].append("Braces")
    other = make_shop(setup)
    foreign = other.services["Braces"]
    assert foreign not in biz.services.values()
    response = submit(client, biz, details(biz, service=foreign))
    assert response.status_code == 400
    assert "Please choose one of the services listed." in text(response)
    assert written(biz) == (0, 0) and written(other) == (0, 0)


def test_plan_limit_asks_the_customer_to_call(
    client: Client, make_shop: MakeShop, frozen: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(plans.PLANS, "starter",
                        replace(plans.PLANS["starter"], appointment_limit=1))
    shop = make_shop(plan="starter")
    assert submit(client, shop, details(shop)).status_code == 303
    response = submit(client, shop, details(shop, start=local(*TUESDAY, 10).isoformat(),
                                            phone="+12125550111"))
    assert response.status_code == 402
    assert "not taking more online bookings this month" in text(response)
    assert "Please call us" in text(response)
    assert written(shop) == (1, 1)


def test_the_form_needs_a_csrf_token(biz: Shop) -> None:
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(f"/b/{biz.tenant.slug}/book/", details(biz)).status_code == 403
    assert written(biz) == (0, 0)


# --- managing --------------------------------------------------------------------------------


def book(shop: Shop, start: datetime, service: str = "Checkup") -> Appointment:
    with tenant_context(shop.tenant):
        return appointment_book(service_id=shop.services[service], start=start,
                                customer=ada(), channel="web")


def test_customer_moves_the_appointment_from_the_manage_page(
    client: Client, biz: Shop
) -> None:
    appointment = book(biz, local(*TUESDAY, 9))
    manage = manage_path(biz, appointment)
    picker = client.get(f"{manage}reschedule/?date=2026-03-11")
    assert picker.status_code == 200
    assert "Move your appointment" in text(picker)
    choices = hrefs(picker, "slot")
    assert choices and all(h.startswith(f"{manage}reschedule/?") for h in choices)
    target = next(h for h in choices if "T14%3A00" in h or "T14:00" in h)

    confirm = client.get(target)
    assert confirm.status_code == 200
    assert "Wednesday 11 March 2026 , 2:00 PM EDT" in text(confirm)
    start = re.search(r'name="start" value="([^"]+)"', confirm.content.decode())
    assert start is not None
    moved = client.post(f"{manage}reschedule/", {"start": unescape(start.group(1))})
    assert moved.status_code == 303
    [after] = appointments(biz)
    assert after.start == local(2026, 3, 11, 14)
    assert after.reference == appointment.reference and after.status == "booked"
    page_after = client.get(manage)
    assert "Your appointment is moved to Wednesday 11 March at 2:00 PM EDT" in text(page_after)


def test_the_move_picker_offers_times_overlapping_the_appointment_itself(
    client: Client, biz: Shop
) -> None:
    # Cleaning: 60 minutes plus 10 of buffer, and only Ana offers it. Moving it
    # half an hour later overlaps its own time, which is free for the move.
    appointment = book(biz, local(*TUESDAY, 9), service="Cleaning")
    picker = client.get(f"{manage_path(biz, appointment)}reschedule/?date=2026-03-10")
    assert picker.status_code == 200
    offered = {parse_qs(urlsplit(unescape(h)).query)["start"][0] for h in hrefs(picker, "slot")}
    assert local(*TUESDAY, 9, 30).isoformat() in offered
    # The same time is taken for anyone else.
    with tenant_context(biz.tenant):
        assert local(*TUESDAY, 9, 30) not in {
            slot.start for slot in slots_search(service_id=biz.services["Cleaning"],
                                                start_date=local(*TUESDAY, 0).date(),
                                                end_date=local(*TUESDAY, 0).date())}
    moved = client.post(f"{manage_path(biz, appointment)}reschedule/",
                        {"start": local(*TUESDAY, 9, 30).isoformat()})
    assert moved.status_code == 303
    assert appointments(biz)[0].start == local(*TUESDAY, 9, 30)


def test_moving_onto_a_time_just_taken_keeps_the_appointment(
    client: Client, biz: Shop
) -> None:
    appointment = book(biz, local(*TUESDAY, 9), service="Cleaning")
    with tenant_context(biz.tenant):
        appointment_book(service_id=biz.services["Cleaning"], start=local(2026, 3, 11, 9),
                         customer=ada("+12125550199"), channel="api")
    response = client.post(f"{manage_path(biz, appointment)}reschedule/",
                           {"start": local(2026, 3, 11, 9).isoformat()})
    assert response.status_code == 409
    assert "That time was just taken, please pick another" in text(response)
    assert "Free times on Wednesday 11 March" in text(response)
    assert appointments(biz)[0].start == local(*TUESDAY, 9)


def test_cancelling_too_late_is_refused_with_a_clear_message(
    client: Client, biz: Shop, frozen: Any
) -> None:
    appointment = book(biz, local(*TUESDAY, 9))
    manage = manage_path(biz, appointment)
    # Cancellation notice is 120 minutes: at 07:30 it is too late.
    frozen.move_to(local(*TUESDAY, 7, 30))
    page_now = client.get(manage)
    assert "too late to change this appointment online" in text(page_now)
    assert "Cancel appointment" not in text(page_now)
    response = client.post(f"{manage}cancel/")
    assert response.status_code == 409
    assert "It is too late to cancel this appointment online" in text(response)
    moved = client.post(f"{manage}reschedule/", {"start": local(*TUESDAY, 15).isoformat()})
    assert moved.status_code == 409
    assert "too late to move" in text(moved)
    assert appointments(biz)[0].status == "booked"
    assert appointments(biz)[0].start == local(*TUESDAY, 9)


def test_a_cancelled_appointment_shows_as_cancelled(client: Client, biz: Shop) -> None:
    appointment = book(biz, local(*TUESDAY, 9))
    manage = manage_path(biz, appointment)
    assert client.post(f"{manage}cancel/").status_code == 303
    # Cancelling again or trying to move it just shows its state.
    assert client.post(f"{manage}cancel/").status_code == 303
    assert client.get(f"{manage}reschedule/").status_code == 302
    response = client.get(manage)
    assert "This appointment was cancelled" in text(response)
    assert "Book a new appointment" in text(response)


@pytest.mark.parametrize("suffix", ["", "cancel/", "reschedule/", "appointment.ics"])
def test_another_business_s_token_is_a_404_here(
    client: Client, biz: Shop, make_shop: MakeShop, suffix: str
) -> None:
    other = make_shop()
    theirs = book(other, local(*TUESDAY, 9))
    token = manage_path(other, theirs).rstrip("/").rsplit("/", 1)[-1]
    mine = f"/b/{biz.tenant.slug}/manage/{token}/{suffix}"
    response = client.post(mine) if suffix == "cancel/" else client.get(mine)
    assert response.status_code == 404
    assert "This link does not work" in text(response)
    assert appointments(other)[0].status == "booked"


@pytest.mark.parametrize("token", ["nonsense", "a" * 300])
def test_a_forged_token_is_a_404(client: Client, biz: Shop, token: str) -> None:
    response = client.get(f"/b/{biz.tenant.slug}/manage/{token}/")
    assert response.status_code == 404
    assert "This link does not work" in text(response)


def test_an_expired_link_is_a_404(client: Client, biz: Shop, frozen: Any) -> None:
    appointment = book(biz, local(*TUESDAY, 9))
    manage = manage_path(biz, appointment)
    frozen.move_to(local(*TUESDAY, 9) + timedelta(days=45))
    assert client.get(manage).status_code == 404


def test_the_confirmation_page_needs_the_matching_token(client: Client, biz: Shop) -> None:
    appointment = book(biz, local(*TUESDAY, 9))
    other = book(biz, local(*TUESDAY, 10))
    token = manage_path(biz, appointment).rstrip("/").rsplit("/", 1)[-1]
    base = f"/b/{biz.tenant.slug}/booked"
    assert client.get(f"{base}/{appointment.reference}/?t={token}").status_code == 200
    assert client.get(f"{base}/{other.reference}/?t={token}").status_code == 404
    assert client.get(f"{base}/{appointment.reference}/").status_code == 404


# --- the business itself ------------------------------------------------------------------


def test_a_suspended_business_shows_a_notice(client: Client, biz: Shop) -> None:
    appointment = book(biz, local(*TUESDAY, 9))
    manage = manage_path(biz, appointment)
    tenant_set_status(tenant=biz.tenant, status="suspended")
    for path in (page(biz), manage, f"/b/{biz.tenant.slug}/book/"):
        response = client.get(path)
        assert response.status_code == 403
        assert "is not taking bookings online at the moment" in text(response)
    assert submit(client, biz, details(biz)).status_code == 403
    assert written(biz) == (1, 1)


def test_an_unknown_business_is_a_404(client: Client, biz: Shop) -> None:
    assert client.get("/b/no-such-business/").status_code == 404
    assert client.get("/b/no-such-business/book/").status_code == 404


@pytest.mark.parametrize("plan", ["standard", "starter"])
def test_waitlist_is_offered_only_when_nothing_is_free_and_the_plan_has_it(
    client: Client, make_shop: MakeShop, frozen: Any, plan: str
) -> None:
    shop = closed_shop(make_shop, plan)
    response = client.get(page(shop, service=shop.services["Cleaning"]))
    assert response.status_code == 200
    assert "No free times in these two weeks" in text(response)
    assert ("Join the waitlist" in text(response)) == (plan == "standard")
    # With free times there is no waitlist form.
    later = client.get(page(shop, service=shop.services["Cleaning"], **{"from": "2026-03-20"}))
    assert "Join the waitlist" not in text(later)


@pytest.mark.parametrize("path", [
    "", "?service=1", "?service=1&date=2026-03-10",
    "book/?service=1&start=2026-03-10T09%3A00%3A00-04%3A00",
])
def test_pages_carry_no_inline_script_or_style(client: Client, biz: Shop, path: str) -> None:
    # A strict Content-Security-Policy will forbid both.
    html = client.get(f"/b/{biz.tenant.slug}/{path}").content.decode()
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None
    assert " style=" not in html and "<style" not in html
    assert re.search(r"\son[a-z]+=", html) is None


def closed_shop(make_shop: MakeShop, plan: str) -> Shop:
    setup = base_setup()
    setup["closures"] = [{"start": "2026-03-01T00:00", "end": "2026-03-20T00:00",
                          "staff": None, "reason": "Renovation"}]
    return make_shop(setup, plan=plan)


def waitlist_entries(shop: Shop) -> list[WaitlistEntry]:
    with tenant_context(shop.tenant):
        return list(WaitlistEntry.objects.select_related("customer", "service"))


def test_customer_joins_the_waitlist_for_monday_mornings(
    client: Client, make_shop: MakeShop, frozen: Any
) -> None:
    shop = closed_shop(make_shop, "standard")
    form_page = client.get(page(shop, service=shop.services["Cleaning"]))
    assert 'name="from" value="2026-03-02"' in form_page.content.decode()
    data = {"service": shop.services["Cleaning"], "staff": "", "from": "2026-03-02",
            "name": "Ada Lovelace", "phone": "(212) 555-0100", "days": ["0"],
            "part_of_day": "morning", "auto_book": "on"}
    response = client.post(f"/b/{shop.tenant.slug}/waitlist/join/", data)
    assert response.status_code == 200
    assert "You're on the waitlist" in text(response)
    [entry] = waitlist_entries(shop)
    assert entry.service.name == "Cleaning" and entry.staff_id is None
    assert entry.customer.phone == "+12125550100"
    assert entry.auto_book is True
    assert entry.windows[0] == {"date": "2026-03-02", "start": "08:00", "end": "12:00"}
    assert {w["date"] for w in entry.windows} <= {
        f"2026-{m:02d}-{d:02d}" for m, d in ((3, 2), (3, 9), (3, 16), (3, 23), (3, 30),
                                               (4, 6), (4, 13), (4, 20), (4, 27))
    }
    assert len(entry.windows) == 9  # every Monday of the 60-day booking window

    again = client.post(f"/b/{shop.tenant.slug}/waitlist/join/", data)
    assert again.status_code == 400
    assert "already on the waitlist" in text(again)
    assert len(waitlist_entries(shop)) == 1


def test_waitlist_without_a_preference_means_any_time(
    client: Client, make_shop: MakeShop, frozen: Any
) -> None:
    shop = closed_shop(make_shop, "premium")
    response = client.post(f"/b/{shop.tenant.slug}/waitlist/join/", {
        "service": shop.services["Checkup"], "staff": shop.staff["Ben"],
        "name": "Ada Lovelace", "phone": "+12125550100"})
    assert response.status_code == 200
    [entry] = waitlist_entries(shop)
    assert entry.windows == [] and entry.auto_book is False and entry.staff_id == shop.staff["Ben"]


def test_waitlist_form_errors_are_shown_and_nothing_is_written(
    client: Client, make_shop: MakeShop, frozen: Any
) -> None:
    shop = closed_shop(make_shop, "standard")
    response = client.post(f"/b/{shop.tenant.slug}/waitlist/join/", {
        "service": shop.services["Cleaning"], "name": "", "phone": "12", "days": ["9"]})
    assert response.status_code == 400
    words = text(response)
    assert "Please give your name." in words
    assert "Select a valid choice." in words
    assert waitlist_entries(shop) == []


def test_a_plan_without_the_waitlist_refuses_to_join(
    client: Client, make_shop: MakeShop, frozen: Any
) -> None:
    shop = closed_shop(make_shop, "starter")
    response = client.post(f"/b/{shop.tenant.slug}/waitlist/join/", {
        "service": shop.services["Cleaning"], "name": "Ada Lovelace", "phone": "+12125550100"})
    assert response.status_code == 403
    assert "does not keep a waitlist online" in text(response)
    assert waitlist_entries(shop) == []
