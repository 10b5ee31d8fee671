from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client
from icalendar import Calendar

from booking.models import (
    Appointment,
    BusinessProfile,
    Closure,
    Customer,
    Notification,
    StaffMember,
    WaitlistEntry,
    WorkingHours,
)
from booking.services import appointment_book, appointment_cancel
from tenants.context import tenant_context
from tenants.models import Membership, Tenant
from tests.booking.conftest import MakeShop, Shop, ada, base_setup, local

TUESDAY = (2026, 3, 10)
APPOINTMENTS = "/dashboard/booking/appointment/"


def owner_of(tenant: Tenant) -> User:
    return tenant.memberships.get(role=Membership.Role.OWNER).user


def book(shop: Shop, service: str, start: datetime, staff: str | None = None,
         phone: str = "+12125550100", **kwargs: Any) -> Appointment:
    kwargs.setdefault("channel", Appointment.Channel.WEB)
    with tenant_context(shop.tenant):
        return appointment_book(
            customer=ada(phone),
            service_id=shop.services[service],
            start=start,
            staff_id=shop.staff[staff] if staff else None,
            **kwargs,
        )


def messages_of(response: Any) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


def html_of(response: Any) -> str:
    return str(response.content.decode())


@pytest.fixture
def biz(make_shop: MakeShop, frozen: time_machine.Traveller) -> Shop:
    """The base business at NOW; no tenant in context (requests bring their own)."""
    return make_shop(name="Test Dental")


@pytest.fixture
def owner(client: Client, biz: Shop) -> Client:
    client.force_login(owner_of(biz.tenant))
    return client


def book_form(shop: Shop, **overrides: Any) -> dict[str, Any]:
    return {
        "service": shop.services["Checkup"],
        "staff": shop.staff["Ana"],
        "date": "2026-03-10",
        "time": "14:00",
        "name": "Grace Hopper",
        "phone": "(212) 555-0199",
        "email": "grace@example.com",
        "notes": "First visit",
        "key": "0123456789abcdef0123456789abcdef",
    } | overrides


# --- every page renders -----------------------------------------------------------------------


def test_every_dashboard_page_renders_for_the_owner(owner: Client, biz: Shop) -> None:
    appointment = book(biz, "Checkup", local(*TUESDAY, 9), "Ana")
    with tenant_context(biz.tenant):
        customer = Customer.objects.get()
        closure = Closure.objects.get()
        profile = BusinessProfile.objects.get()
        entry = WaitlistEntry.objects.create(customer=customer, service_id=biz.services["Checkup"])
        notification = Notification.objects.create(
            appointment=appointment, kind=Notification.Kind.CONFIRMATION,
            channel=Notification.Channel.SMS, recipient=customer.phone,
            scheduled_for=appointment.created_at, dedupe_key="confirmation:1",
        )
    objects = {
        "service": biz.services["Checkup"],
        "staffmember": biz.staff["Ana"],
        "closure": closure.pk,
        "customer": customer.pk,
        "appointment": appointment.pk,
        "waitlistentry": entry.pk,
        "businessprofile": profile.pk,
        "notification": notification.pk,
    }
    for model, pk in objects.items():
        base = f"/dashboard/booking/{model}/"
        assert owner.get(base).status_code == 200, base
        assert owner.get(f"{base}{pk}/change/").status_code == 200, model
    for model in ("service", "staffmember", "closure", "appointment"):
        assert owner.get(f"/dashboard/booking/{model}/add/").status_code == 200, model
    # Rows written only by the booking engine and messaging are not added by hand.
    for model in ("customer", "waitlistentry", "notification"):
        assert owner.get(f"/dashboard/booking/{model}/add/").status_code == 403, model
    for page in ("/dashboard/", "/dashboard/booking/", "/dashboard/calendar/",
                 "/dashboard/calendar/?view=week", "/dashboard/calendar/feeds/"):
        assert owner.get(page).status_code == 200, page


def test_dashboard_home_links_to_the_calendar(owner: Client) -> None:
    html = html_of(owner.get("/dashboard/"))
    assert 'href="/dashboard/calendar/"' in html


def test_appointment_list_shows_local_start_not_utc(owner: Client, biz: Shop) -> None:
    book(biz, "Checkup", local(*TUESDAY, 14), "Ana")
    html = html_of(owner.get(APPOINTMENTS))
    assert "Tue 10 Mar 2026 14:00 EDT" in html
    assert "18:00" not in html


def test_missing_id_is_a_404_not_a_redirect(owner: Client) -> None:
    assert owner.get(f"{APPOINTMENTS}999/change/").status_code == 404
    assert owner.get("/dashboard/booking/service/999/change/").status_code == 404


# --- booking through the dashboard -------------------------------------------------------------


def test_dashboard_booking_goes_through_the_write_path(owner: Client, biz: Shop) -> None:
    response = owner.post(f"{APPOINTMENTS}add/", book_form(biz))
    assert response.status_code == 302
    with tenant_context(biz.tenant):
        appointment = Appointment.objects.select_related("customer").get()
    assert response["Location"] == f"{APPOINTMENTS}{appointment.pk}/change/"
    assert appointment.channel == Appointment.Channel.DASHBOARD
    assert appointment.start == local(*TUESDAY, 14)
    assert appointment.staff_id == biz.staff["Ana"]
    assert appointment.status == Appointment.Status.BOOKED
    assert appointment.notes == "First visit"
    assert re.fullmatch(r"[2-9A-Z]{3}-[2-9A-Z]{3}", appointment.reference)
    # The engine normalised the phone number, as on every channel.
    assert appointment.customer.phone == "+12125550199"
    followed = owner.get(response["Location"])
    assert ("success", f"Booked {appointment.reference}: Checkup with Ana, "
            "Tue 10 Mar 2026 14:00 EDT.") in messages_of(followed)


def test_double_submitted_booking_form_books_once(owner: Client, biz: Shop) -> None:
    first = owner.post(f"{APPOINTMENTS}add/", book_form(biz))
    second = owner.post(f"{APPOINTMENTS}add/", book_form(biz))
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    with tenant_context(biz.tenant):
        assert Appointment.objects.count() == 1


def test_booking_with_anyone_lets_the_engine_choose(owner: Client, biz: Shop) -> None:
    response = owner.post(f"{APPOINTMENTS}add/", book_form(biz, staff="", service=biz.services[
        "Cleaning"]))
    assert response.status_code == 302
    with tenant_context(biz.tenant):
        # Only Ana offers cleanings.
        assert Appointment.objects.get().staff_id == biz.staff["Ana"]


def test_taken_slot_shows_an_error_and_writes_nothing(owner: Client, biz: Shop) -> None:
    book(biz, "Checkup", local(*TUESDAY, 14), "Ana")
    with tenant_context(biz.tenant):
        before = Appointment.objects.count(), Customer.objects.count()

    response = owner.post(f"{APPOINTMENTS}add/", book_form(biz))
    assert response.status_code == 200
    assert ("error", "Sorry, that time has just been taken. Please choose another.") in (
        messages_of(response)
    )
    assert "Sorry, that time has just been taken" in html_of(response)
    with tenant_context(biz.tenant):
        assert (Appointment.objects.count(), Customer.objects.count()) == before
        assert not Customer.objects.filter(name="Grace Hopper").exists()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"time": "20:00"}, None, "That time is outside our working hours."),
        ({"phone": "12"}, "phone", None),
        ({"date": "2026-03-13"}, None, "We are closed at that time."),
        ({"time": "14:07"}, None, "Appointments start on the times listed"),
    ],
)
def test_refused_booking_is_an_error_message_never_a_500(
    owner: Client, biz: Shop, overrides: dict[str, str], field: str | None, message: str | None
) -> None:
    response = owner.post(f"{APPOINTMENTS}add/", book_form(biz, **overrides))
    assert response.status_code == 200
    errors = [text for level, text in messages_of(response) if level == "error"]
    assert len(errors) == 1
    if message is not None:
        assert errors[0].startswith(message)
    if field is not None:
        assert response.context["form"].errors[field]
    with tenant_context(biz.tenant):
        assert not Appointment.objects.exists()


def test_local_time_skipped_by_the_clock_change_is_a_form_error(owner: Client, biz: Shop) -> None:
    # 2026-03-08 02:30 never happens in New York (02:00 jumps to 03:00).
    response = owner.post(f"{APPOINTMENTS}add/", book_form(biz, date="2026-03-08", time="02:30"))
    assert response.status_code == 200
    assert "does not exist" in str(response.context["form"].errors["time"])
    with tenant_context(biz.tenant):
        assert not Appointment.objects.exists()


def test_appointment_change_page_is_read_only(owner: Client, biz: Shop) -> None:
    appointment = book(biz, "Checkup", local(*TUESDAY, 9), "Ana")
    page = owner.get(f"{APPOINTMENTS}{appointment.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in html_of(page)
    response = owner.post(f"{APPOINTMENTS}{appointment.pk}/change/", {"status": "cancelled"})
    assert response.status_code == 403
    assert owner.post(f"{APPOINTMENTS}{appointment.pk}/delete/", {"post": "yes"}).status_code \
        == 403
    with tenant_context(biz.tenant):
        assert Appointment.objects.get().status == Appointment.Status.BOOKED


# --- cancel, outcomes, reschedule --------------------------------------------------------------


def test_cancel_action_cancels_through_the_write_path(owner: Client, biz: Shop) -> None:
    first = book(biz, "Checkup", local(*TUESDAY, 9), "Ana")
    second = book(biz, "Checkup", local(*TUESDAY, 10), "Ana", phone="+12125550101")
    untouched = book(biz, "Checkup", local(*TUESDAY, 11), "Ana", phone="+12125550102")
    response = owner.post(APPOINTMENTS, {
        "action": "cancel_selected", "_selected_action": [first.pk, second.pk],
    })
    assert response.status_code == 302
    with tenant_context(biz.tenant):
        statuses = dict(Appointment.objects.values_list("pk", "status"))
        cancelled_at = Appointment.objects.get(pk=first.pk).cancelled_at
    assert statuses == {first.pk: "cancelled", second.pk: "cancelled", untouched.pk: "booked"}
    assert cancelled_at is not None
    followed = owner.get(APPOINTMENTS)
    assert ("success", f"Cancelled: {first.reference}, {second.reference}.") in (
        messages_of(followed)
    )


def test_cancel_button_on_the_appointment_page(owner: Client, biz: Shop) -> None:
    appointment = book(biz, "Checkup", local(*TUESDAY, 9), "Ana")
    page = html_of(owner.get(f"{APPOINTMENTS}{appointment.pk}/change/"))
    assert f'action="{APPOINTMENTS}{appointment.pk}/outcome/"' in page
    assert owner.get(f"{APPOINTMENTS}{appointment.pk}/outcome/").status_code == 405

    response = owner.post(f"{APPOINTMENTS}{appointment.pk}/outcome/", {"outcome": "cancel"})
    assert response.status_code == 302
    with tenant_context(biz.tenant):
        assert Appointment.objects.get().status == Appointment.Status.CANCELLED


def test_owner_may_cancel_inside_the_customer_notice(
    owner: Client, biz: Shop, frozen: time_machine.Traveller
) -> None:
    appointment = book(biz, "Checkup", local(*TUESDAY, 9), "Ana")
    frozen.move_to(local(*TUESDAY, 8, 30))
    owner.force_login(owner_of(biz.tenant))
    owner.post(f"{APPOINTMENTS}{appointment.pk}/outcome/", {"outcome": "cancel"})
    with tenant_context(biz.tenant):
        assert Appointment.objects.get().status == Appointment.Status.CANCELLED


def test_no_show_before_the_start_is_refused_with_a_message(owner: Client, biz: Shop) -> None:
    appointment = book(biz, "Checkup", local(*TUESDAY, 9), "Ana")
    response = owner.post(APPOINTMENTS, {
        "action": "mark_no_show", "_selected_action": [appointment.pk],
    }, follow=True)
    assert response.status_code == 200
    assert ("error", f"{appointment.reference}: This appointment has not started yet.") in (
        messages_of(response)
    )
    with tenant_context(biz.tenant):
        assert Appointment.objects.get().status == Appointment.Status.BOOKED


def test_no_show_and_completed_after_the_start(
    owner: Client, biz: Shop, frozen: time_machine.Traveller
) -> None:
    missed = book(biz, "Checkup", local(*TUESDAY, 9), "Ana")
    came = book(biz, "Checkup", local(*TUESDAY, 10), "Ana", phone="+12125550101")
    frozen.move_to(local(*TUESDAY, 12))
    owner.force_login(owner_of(biz.tenant))

    page = html_of(owner.get(f"{APPOINTMENTS}{missed.pk}/change/"))
    assert 'value="no_show"' in page and 'value="complete"' in page
    owner.post(f"{APPOINTMENTS}{missed.pk}/outcome/", {"outcome": "no_show"})
    owner.post(APPOINTMENTS, {"action": "mark_completed", "_selected_action": [came.pk]})
    with tenant_context(biz.tenant):
        statuses = dict(Appointment.objects.values_list("pk", "status"))
    assert statuses == {missed.pk: "no_show", came.pk: "completed"}


def test_reschedule_form_moves_the_appointment(owner: Client, biz: Shop) -> None:
    appointment = book(biz, "Checkup", local(*TUESDAY, 9), "Ana")
    url = f"{APPOINTMENTS}{appointment.pk}/reschedule/"
    form = owner.get(url)
    assert form.status_code == 200
    # Prefilled with the current local time, not UTC.
    assert form.context["form"].initial["time"].strftime("%H:%M") == "09:00"

    response = owner.post(url, {"date": "2026-03-11", "time": "15:30",
                                "staff": biz.staff["Ben"]})
    assert response.status_code == 302
    with tenant_context(biz.tenant):
        moved = Appointment.objects.get()
    assert moved.reference == appointment.reference
    assert moved.start == local(2026, 3, 11, 15, 30)
    assert moved.staff_id == biz.staff["Ben"]
    assert moved.channel == Appointment.Channel.WEB


def test_reschedule_into_a_taken_slot_keeps_the_appointment(owner: Client, biz: Shop) -> None:
    appointment = book(biz, "Checkup", local(*TUESDAY, 9), "Ana")
    book(biz, "Checkup", local(*TUESDAY, 11), "Ana", phone="+12125550101")
    response = owner.post(f"{APPOINTMENTS}{appointment.pk}/reschedule/", {
        "date": "2026-03-10", "time": "11:00", "staff": biz.staff["Ana"],
    })
    assert response.status_code == 200
    assert ("error", "Sorry, that time has just been taken. Please choose another.") in (
        messages_of(response)
    )
    with tenant_context(biz.tenant):
        assert Appointment.objects.get(pk=appointment.pk).start == local(*TUESDAY, 9)


def test_cancelled_appointment_cannot_be_moved(owner: Client, biz: Shop) -> None:
    appointment = book(biz, "Checkup", local(*TUESDAY, 9), "Ana")
    with tenant_context(biz.tenant):
        appointment_cancel(appointment=appointment, by_customer=False)
    response = owner.post(f"{APPOINTMENTS}{appointment.pk}/reschedule/", {
        "date": "2026-03-10", "time": "11:00",
    }, follow=True)
    assert ("error", "Only a booked appointment can be moved.") in messages_of(response)
    with tenant_context(biz.tenant):
        assert Appointment.objects.get().start == local(*TUESDAY, 9)


# --- setup pages --------------------------------------------------------------------------------


def staff_form(name: str, service_ids: list[int], hours: list[tuple[int, str, str]],
               existing: tuple[tuple[int, int, str, str], ...] = ()) -> dict[str, Any]:
    """The staff change form's POST data; ``existing`` rows are (pk, weekday, start, end)."""
    rows = [(pk, day, start, end) for pk, day, start, end in existing] + [
        ("", day, start, end) for day, start, end in hours
    ]
    data: dict[str, Any] = {
        "name": name, "active": "on", "services": service_ids,
        "hours-TOTAL_FORMS": len(rows), "hours-INITIAL_FORMS": len(existing),
        "hours-MIN_NUM_FORMS": 0, "hours-MAX_NUM_FORMS": 1000,
    }
    for i, (pk, day, start, end) in enumerate(rows):
        data |= {f"hours-{i}-id": pk, f"hours-{i}-weekday": day,
                 f"hours-{i}-start": start, f"hours-{i}-end": end}
    return data


def test_staff_with_overlapping_hours_is_refused_clearly(owner: Client, biz: Shop) -> None:
    response = owner.post("/dashboard/booking/staffmember/add/", staff_form(
        "Cy", [biz.services["Checkup"]], [(0, "09:00", "12:00"), (0, "11:00", "14:00")]
    ))
    assert response.status_code == 200
    assert "Monday 11:00-14:00 overlaps 09:00-12:00 on the same day." in html_of(response)
    response = owner.post("/dashboard/booking/staffmember/add/", staff_form(
        "Cy", [biz.services["Checkup"]], [(0, "12:00", "09:00")]
    ))
    assert response.status_code == 200
    assert "The end must be after the start (same day)." in html_of(response)
    with tenant_context(biz.tenant):
        assert not StaffMember.objects.filter(name="Cy").exists()


def test_staff_day_can_be_split_in_one_save(owner: Client, biz: Shop) -> None:
    with tenant_context(biz.tenant):
        cy = StaffMember.objects.create(name="Cy")
        whole_day = WorkingHours.objects.create(staff=cy, weekday=0, start="09:00", end="17:00")
    response = owner.post(f"/dashboard/booking/staffmember/{cy.pk}/change/", staff_form(
        "Cy", [biz.services["Checkup"]], [(0, "13:00", "17:00")],
        existing=[(whole_day.pk, 0, "09:00", "12:00")],
    ))
    assert response.status_code == 302
    with tenant_context(biz.tenant):
        hours = list(WorkingHours.objects.filter(staff=cy).values_list("start", "end"))
        offered = list(cy.services.values_list("name", flat=True))
    assert [(f"{a:%H:%M}", f"{b:%H:%M}") for a, b in hours] == [("09:00", "12:00"),
                                                                 ("13:00", "17:00")]
    assert offered == ["Checkup"]


def test_closure_times_are_entered_in_local_time(owner: Client, biz: Shop) -> None:
    response = owner.post("/dashboard/booking/closure/add/", {
        "start_0": "2026-03-20", "start_1": "09:00", "end_0": "2026-03-20", "end_1": "13:00",
        "staff": biz.staff["Ben"], "reason": "Dentist",
    })
    assert response.status_code == 302
    with tenant_context(biz.tenant):
        closure = Closure.objects.get(reason="Dentist")
    assert closure.start == local(2026, 3, 20, 9)
    assert closure.staff_id == biz.staff["Ben"]


def test_reminder_offsets_must_be_minutes(owner: Client, biz: Shop) -> None:
    with tenant_context(biz.tenant):
        profile = BusinessProfile.objects.get()
    data = {
        "display_name": "Test Dental", "address": "", "phone": "", "email": "",
        "slot_step_minutes": 15, "min_notice_minutes": 60, "max_days_ahead": 60,
        "cancellation_notice_minutes": 120, "reminder_offsets_minutes": '["soon"]',
        "waitlist_hold_minutes": 15,
    }
    url = f"/dashboard/booking/businessprofile/{profile.pk}/change/"
    response = owner.post(url, data)
    assert response.status_code == 200
    assert "Give a list of whole numbers of minutes" in html_of(response)
    assert owner.post(url, data | {"reminder_offsets_minutes": "[120, 1440]"}).status_code == 302
    with tenant_context(biz.tenant):
        assert BusinessProfile.objects.get().reminder_offsets_minutes == [1440, 120]


def test_waitlist_remove_action(owner: Client, biz: Shop) -> None:
    with tenant_context(biz.tenant):
        customer = Customer.objects.create(name="Ada", phone="+12125550100")
        waiting = WaitlistEntry.objects.create(customer=customer,
                                               service_id=biz.services["Checkup"])
        booked = WaitlistEntry.objects.create(customer=customer,
                                              service_id=biz.services["Checkup"],
                                              status=WaitlistEntry.Status.BOOKED)
    assert "Waiting" in html_of(owner.get("/dashboard/booking/waitlistentry/?status=waiting"))
    owner.post("/dashboard/booking/waitlistentry/", {
        "action": "remove_selected", "_selected_action": [waiting.pk, booked.pk],
    })
    with tenant_context(biz.tenant):
        statuses = dict(WaitlistEntry.objects.values_list("pk", "status"))
    # A booked entry is history, not something to take off the list.
    assert statuses == {waiting.pk: "removed", booked.pk: "booked"}


# --- calendar ---------------------------------------------------------------------------------


def entries_in(html: str) -> list[str]:
    """Each calendar entry's text, whitespace collapsed."""
    return [" ".join(re.sub(r"<[^>]+>", " ", m).split())
            for m in re.findall(r'<a class="ss-appt[^"]*"[^>]*>(.*?)</a>', html, re.S)]


def test_calendar_day_shows_appointments_at_local_time(owner: Client, biz: Shop) -> None:
    appointment = book(biz, "Checkup", local(*TUESDAY, 14), "Ana", channel="phone")
    book(biz, "Whitening", local(*TUESDAY, 9), "Ben", phone="+12125550101")
    response = owner.get("/dashboard/calendar/?date=2026-03-10")
    assert response.status_code == 200
    html = html_of(response)
    assert "Tuesday 10 March 2026" in html
    texts = entries_in(html)
    assert f"14:00-14:30 Checkup Ada Lovelace Booked Phone · {appointment.reference}" in texts
    assert any(t.startswith("09:00-10:30 Whitening") for t in texts)
    assert f'href="{APPOINTMENTS}{appointment.pk}/change/"' in html
    # 14:00 in New York is 18:00 UTC; nothing on the page is in UTC.
    assert "18:00" not in html
    # The 14:00 checkup sits in Ana's column, two rows (quarter hours) tall.
    rows = response.context["rows"]
    staff_names = [s.name for s in response.context["staff"]]
    ana = staff_names.index("Ana")
    row = next(r for r in rows if r.label == "14:00")
    cell = row.cells[ana]
    assert cell is not None and cell.rows == 2
    assert [e.appointment.pk for e in cell.entries] == [appointment.pk]


def test_calendar_week_groups_by_staff_and_local_day(owner: Client, biz: Shop) -> None:
    # 21:30 on Friday in New York is already Saturday in UTC.
    with tenant_context(biz.tenant):
        WorkingHours.objects.create(staff_id=biz.staff["Ben"], weekday=4, start="18:00",
                                    end="23:00")
    late = book(biz, "Checkup", local(2026, 3, 6, 21, 30), "Ben")
    early = book(biz, "Checkup", local(2026, 3, 3, 9), "Ana",
                 phone="+12125550101")
    response = owner.get("/dashboard/calendar/?date=2026-03-04&view=week")
    assert response.status_code == 200
    html = html_of(response)
    assert "Week of 2-8 March 2026" in html
    week = {row.staff.name: row for row in response.context["week"]}
    friday = week["Ben"].days[4]
    assert friday.day.isoformat() == "2026-03-06"
    assert [e.appointment.pk for e in friday.entries] == [late.pk]
    assert week["Ben"].days[5].entries == []
    assert [e.appointment.pk for e in week["Ana"].days[1].entries] == [early.pk]
    assert any(t.startswith("21:30-22:00 Checkup") for t in entries_in(html))


def test_calendar_on_the_dst_change_day(owner: Client, biz: Shop) -> None:
    # Sunday 2026-03-08: New York moves from EST to EDT at 02:00.
    appointment = book(biz, "Checkup", local(2026, 3, 8, 10), "Ana")
    html = html_of(owner.get("/dashboard/calendar/?date=2026-03-08"))
    assert f"10:00-10:30 Checkup Ada Lovelace Booked Booking page · {appointment.reference}" in (
        entries_in(html)
    )


def test_calendar_navigation_and_staff_filter(owner: Client, biz: Shop) -> None:
    book(biz, "Checkup", local(*TUESDAY, 9), "Ana")
    book(biz, "Checkup", local(*TUESDAY, 9), "Ben", phone="+12125550101")
    ben = biz.staff["Ben"]
    response = owner.get(f"/dashboard/calendar/?date=2026-03-10&staff={ben}")
    assert [s.name for s in response.context["staff"]] == ["Ben"]
    assert len(entries_in(html_of(response))) == 1
    context = response.context
    assert context["prev_url"] == f"/dashboard/calendar/?date=2026-03-09&view=day&staff={ben}"
    assert context["next_url"] == f"/dashboard/calendar/?date=2026-03-11&view=day&staff={ben}"
    # Today is the business's date (NOW is Monday 2 March, 07:00 in New York).
    assert context["today_url"] == f"/dashboard/calendar/?date=2026-03-02&view=day&staff={ben}"
    week = owner.get("/dashboard/calendar/?date=2026-03-10&view=week").context
    assert week["prev_url"] == "/dashboard/calendar/?date=2026-03-02&view=week"
    assert week["next_url"] == "/dashboard/calendar/?date=2026-03-16&view=week"
    # A malformed date falls back to today.
    assert owner.get("/dashboard/calendar/?date=junk").context["day"].isoformat() == "2026-03-02"


def test_calendar_hides_cancelled_unless_asked(owner: Client, biz: Shop) -> None:
    appointment = book(biz, "Checkup", local(*TUESDAY, 9), "Ana")
    with tenant_context(biz.tenant):
        appointment_cancel(appointment=appointment, by_customer=False)
    assert entries_in(html_of(owner.get("/dashboard/calendar/?date=2026-03-10"))) == []
    shown = entries_in(html_of(owner.get("/dashboard/calendar/?date=2026-03-10&cancelled=1")))
    assert len(shown) == 1 and "Cancelled" in shown[0]


def test_cancelled_and_rebooked_slot_share_one_cell(owner: Client, biz: Shop) -> None:
    cancelled = book(biz, "Checkup", local(*TUESDAY, 9), "Ana")
    with tenant_context(biz.tenant):
        appointment_cancel(appointment=cancelled, by_customer=False)
    rebooked = book(biz, "Checkup", local(*TUESDAY, 9, 15), "Ana", phone="+12125550101")
    response = owner.get("/dashboard/calendar/?date=2026-03-10&cancelled=1")
    ana = [s.name for s in response.context["staff"]].index("Ana")
    rows = response.context["rows"]
    nine = next(i for i, r in enumerate(rows) if r.label == "09:00")
    cell = rows[nine].cells[ana]
    # 09:00-09:30 and 09:15-09:45: one cell of three quarter hours, the rows below covered.
    assert cell is not None and cell.rows == 3
    assert [e.appointment.pk for e in cell.entries] == [cancelled.pk, rebooked.pk]
    assert [rows[nine + k].cells[ana] for k in (1, 2)] == [None, None]
    assert rows[nine + 3].cells[ana] is not None


# --- outsiders ----------------------------------------------------------------------------------


@pytest.fixture
def other(make_shop: MakeShop, frozen: time_machine.Traveller) -> Shop:
    """A second business with its own rows, fewer of them, under other names."""
    setup = base_setup()
    setup["name"] = "Other Salon"
    setup["services"] = [dict(setup["services"][1], name="Haircut")]
    setup["staff"] = [dict(setup["staff"][1], name="Zed", services=["Haircut"])]
    return make_shop(setup, name="Other Salon")


def test_outsider_cannot_open_another_business_rows(client: Client, biz: Shop,
                                                    other: Shop) -> None:
    appointment = book(biz, "Whitening", local(*TUESDAY, 9), "Ana")
    client.force_login(owner_of(other.tenant))
    for url in [
        f"{APPOINTMENTS}{appointment.pk}/change/",
        f"{APPOINTMENTS}{appointment.pk}/reschedule/",
        f"/dashboard/booking/service/{biz.services['Whitening']}/change/",
        f"/dashboard/booking/staffmember/{biz.staff['Ben']}/change/",
        f"/dashboard/booking/customer/{appointment.customer_id}/change/",
    ]:
        response = client.get(url)
        assert response.status_code == 404, url
        html = html_of(response)
        for secret in ("Ada Lovelace", "Whitening", "Ben", appointment.reference):
            assert secret not in html, (url, secret)
    response = client.post(f"{APPOINTMENTS}{appointment.pk}/outcome/", {"outcome": "cancel"})
    assert response.status_code == 404
    with tenant_context(biz.tenant):
        assert Appointment.objects.get().status == Appointment.Status.BOOKED


def test_outsider_with_a_colliding_id_sees_only_their_own_row(
    client: Client, biz: Shop, other: Shop
) -> None:
    ana = biz.staff["Ana"]
    zed = other.staff["Zed"]
    assert ana == zed  # the same id in two databases
    client.force_login(owner_of(other.tenant))
    html = html_of(client.get(f"/dashboard/booking/staffmember/{ana}/change/"))
    assert "Zed" in html
    assert "Ana" not in html


def test_outsider_lists_and_calendar_show_only_their_business(
    client: Client, biz: Shop, other: Shop
) -> None:
    book(biz, "Checkup", local(*TUESDAY, 9), "Ana")
    theirs = book(other, "Haircut", local(*TUESDAY, 11), "Zed", phone="+12125550177")
    client.force_login(owner_of(other.tenant))
    for url in ["/dashboard/calendar/?date=2026-03-10",
                "/dashboard/calendar/?date=2026-03-10&view=week&cancelled=1"]:
        html = html_of(client.get(url))
        texts = entries_in(html)
        assert texts == [f"11:00-11:30 Haircut Ada Lovelace Booked Booking page · "
                         f"{theirs.reference}"], url
        assert "Checkup" not in html and ">Ana<" not in html
    html = html_of(client.get(APPOINTMENTS))
    assert theirs.reference in html and "Checkup" not in html


# --- calendar feeds ---------------------------------------------------------------------------


def feed_token(shop: Shop, staff: str | None = None) -> str:
    with tenant_context(shop.tenant):
        if staff is None:
            return BusinessProfile.objects.get().calendar_token
        return StaffMember.objects.get(pk=shop.staff[staff]).calendar_token


def turn_on(client: Client, target: str | int) -> Any:
    return client.post("/dashboard/calendar/feeds/", {"target": target, "action": "regenerate"})


def events_of(response: Any) -> list[Any]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    return list(calendar.walk("VEVENT"))


def test_business_feed_lists_booked_appointments_in_the_window(
    owner: Client, biz: Shop, frozen: time_machine.Traveller
) -> None:
    client = Client()
    old = book(biz, "Checkup", local(*TUESDAY, 9), "Ana")
    cancelled = book(biz, "Checkup", local(*TUESDAY, 10), "Ana", phone="+12125550102")
    kept = book(biz, "Checkup", local(*TUESDAY, 11), "Ben", phone="+12125550101")
    later = book(biz, "Cleaning", local(2026, 4, 28, 9), "Ana", phone="+12125550103")
    with tenant_context(biz.tenant):
        appointment_cancel(appointment=cancelled, by_customer=False)
    assert turn_on(owner, "business").status_code == 302
    token = feed_token(biz)
    assert len(token) >= 40

    # 30 days before this is 10:30 on 10 March in New York: `old` has dropped out.
    frozen.move_to(datetime(2026, 4, 9, 14, 30, tzinfo=UTC))
    response = client.get(f"/b/{biz.tenant.slug}/calendar/{token}.ics")
    events = events_of(response)
    by_reference = {
        ref: e for e in events for ref in (kept.reference, later.reference)
        if ref in str(e["DESCRIPTION"])
    }
    assert len(events) == 2 and set(by_reference) == {kept.reference, later.reference}
    assert str(by_reference[kept.reference]["SUMMARY"]) == "Checkup: Ada Lovelace"
    assert by_reference[kept.reference].decoded("DTSTART") == local(*TUESDAY, 11)
    assert by_reference[later.reference].decoded("DTSTART") == local(2026, 4, 28, 9)
    body = response.content.decode()
    assert old.reference not in body and cancelled.reference not in body
    assert response["Cache-Control"] == "private, no-store"


def test_staff_feed_lists_only_that_member(owner: Client, biz: Shop) -> None:
    client = Client()
    book(biz, "Checkup", local(*TUESDAY, 9), "Ana")
    bens = book(biz, "Checkup", local(*TUESDAY, 10), "Ben", phone="+12125550101")
    turn_on(owner, biz.staff["Ben"])
    token = feed_token(biz, "Ben")
    assert feed_token(biz, "Ana") == ""
    events = events_of(client.get(f"/b/{biz.tenant.slug}/calendar/{token}.ics"))
    assert [str(e["DESCRIPTION"]).count(bens.reference) for e in events] == [1]
    feeds = html_of(owner.get("/dashboard/calendar/feeds/"))
    assert f"/b/{biz.tenant.slug}/calendar/{token}.ics" in feeds


def test_regenerated_disabled_wrong_and_foreign_tokens_are_404(
    owner: Client, biz: Shop, other: Shop
) -> None:
    client = Client()
    book(biz, "Checkup", local(*TUESDAY, 9), "Ana")
    slug = biz.tenant.slug
    turn_on(owner, "business")
    first = feed_token(biz)
    turn_on(owner, "business")
    second = feed_token(biz)
    assert first != second
    assert client.get(f"/b/{slug}/calendar/{first}.ics").status_code == 404
    assert client.get(f"/b/{slug}/calendar/{second}.ics").status_code == 200
    assert client.get(f"/b/{slug}/calendar/{'x' * 43}.ics").status_code == 404
    assert client.get(f"/b/{slug}/calendar/.ics").status_code == 404

    # Another business's valid token means nothing at this address, and vice versa.
    outsider = Client()
    outsider.force_login(owner_of(other.tenant))
    turn_on(outsider, "business")
    foreign = feed_token(other)
    assert client.get(f"/b/{other.tenant.slug}/calendar/{foreign}.ics").status_code == 200
    assert client.get(f"/b/{slug}/calendar/{foreign}.ics").status_code == 404
    assert client.get(f"/b/{other.tenant.slug}/calendar/{second}.ics").status_code == 404

    owner.post("/dashboard/calendar/feeds/", {"target": "business", "action": "disable"})
    assert feed_token(biz) == ""
    assert client.get(f"/b/{slug}/calendar/{second}.ics").status_code == 404


def test_feed_buttons_are_post_only_and_for_members(client: Client, biz: Shop) -> None:
    # Not logged in: sent to log in, nothing changes.
    response = client.post("/dashboard/calendar/feeds/", {"target": "business",
                                                          "action": "regenerate"})
    assert response.status_code == 302
    assert "/login/" in response["Location"]
    assert feed_token(biz) == ""
