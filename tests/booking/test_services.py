from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine

from booking import errors, signals
from booking.models import Appointment, Customer
from booking.selectors import (
    appointment_by_reference,
    appointments_count_this_month,
    appointments_for_customer,
    slots_search,
)
from booking.services import (
    CustomerDetails,
    appointment_book,
    appointment_cancel,
    appointment_complete,
    appointment_mark_no_show,
    appointment_reschedule,
    customer_details_clean,
    customer_upsert,
)
from tenants.context import tenant_atomic, tenant_context
from tests.booking.conftest import NY, MakeShop, Shop, ada, local

TUESDAY = (2026, 3, 10)


def book(shop: Shop, service: str, start: datetime, staff: str | None = None,
         **kwargs: Any) -> Appointment:
    kwargs.setdefault("customer", ada())
    kwargs.setdefault("channel", Appointment.Channel.WEB)
    return appointment_book(
        service_id=shop.services[service],
        start=start,
        staff_id=shop.staff[staff] if staff else None,
        **kwargs,
    )


@pytest.fixture
def events() -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def receiver(sender: object, **kwargs: Any) -> None:
        seen.append({k: kwargs[k] for k in ("kind", "tenant_id", "appointment_id",
                                            "previous_start", "previous_staff_id")
                     if k in kwargs})

    signals.appointment_changed.connect(receiver, weak=False)
    yield seen
    signals.appointment_changed.disconnect(receiver)


# --- booking ---------------------------------------------------------------------------


def test_booking_stores_utc_times_buffered_block_and_a_readable_reference(shop: Shop) -> None:
    appointment = book(shop, "Cleaning", local(*TUESDAY, 9), "Ana")
    appointment.refresh_from_db()
    assert appointment.start == datetime(2026, 3, 10, 13, 0, tzinfo=UTC)  # 09:00 EDT
    assert appointment.end - appointment.start == timedelta(minutes=60)
    assert appointment.block_start == appointment.start
    assert appointment.block_end == appointment.end + timedelta(minutes=10)
    assert appointment.status == Appointment.Status.BOOKED
    assert appointment.channel == "web"
    assert re.fullmatch(r"[2-9A-HJKMNP-Z]{3}-[2-9A-HJKMNP-Z]{3}", appointment.reference)
    assert appointment.customer.phone == "+12125550100"


def test_second_booking_of_same_slot_is_refused(shop: Shop) -> None:
    book(shop, "Cleaning", local(*TUESDAY, 9), "Ana")
    with pytest.raises(errors.SlotTaken) as caught:
        book(shop, "Checkup", local(*TUESDAY, 9), "Ana", customer=ada("+12125550101"))
    assert caught.value.http_status == 409
    assert Appointment.objects.count() == 1


def test_buffer_after_blocks_the_next_start_until_it_ends(shop: Shop) -> None:
    book(shop, "Cleaning", local(*TUESDAY, 9), "Ana")  # blocks 09:00-10:10
    with pytest.raises(errors.SlotTaken):
        book(shop, "Checkup", local(*TUESDAY, 10), "Ana")
    later = book(shop, "Checkup", local(*TUESDAY, 10, 15), "Ana")
    assert later.start == local(*TUESDAY, 10, 15)


def test_any_staff_fills_each_free_person_then_refuses(shop: Shop) -> None:
    first = book(shop, "Checkup", local(*TUESDAY, 9))
    second = book(shop, "Checkup", local(*TUESDAY, 9), customer=ada("+12125550101"))
    assert {first.staff_id, second.staff_id} == {shop.staff["Ana"], shop.staff["Ben"]}
    with pytest.raises(errors.SlotTaken):
        book(shop, "Checkup", local(*TUESDAY, 9), customer=ada("+12125550102"))


def test_any_staff_only_considers_staff_offering_the_service(shop: Shop) -> None:
    appointment = book(shop, "Cleaning", local(*TUESDAY, 9))
    assert appointment.staff_id == shop.staff["Ana"]


def test_booking_agrees_with_the_search(shop: Shop) -> None:
    slots = slots_search(service_id=shop.services["Checkup"], start_date=date(*TUESDAY),
                         end_date=date(*TUESDAY))
    first = slots[0]
    appointment = book(shop, "Checkup", first.start)
    assert (appointment.start, appointment.staff_id) == (first.start, first.staff_id)
    again = slots_search(service_id=shop.services["Checkup"], start_date=date(*TUESDAY),
                         end_date=date(*TUESDAY), any_staff=False)
    assert (first.start, first.staff_id) not in {(s.start, s.staff_id) for s in again}


@pytest.mark.parametrize(
    ("start", "staff", "service", "error"),
    [
        (local(2026, 3, 1, 9), "Ana", "Checkup", errors.TooSoon),  # yesterday
        (local(2026, 3, 2, 7, 30), "Ana", "Checkup", errors.TooSoon),  # within the hour's notice
        (local(2026, 6, 2, 9), "Ana", "Checkup", errors.TooFarAhead),  # > 60 days ahead
        (local(*TUESDAY, 12), "Ana", "Checkup", errors.OutsideHours),  # lunch break
        (local(*TUESDAY, 11, 45), "Ana", "Checkup", errors.OutsideHours),  # runs into lunch
        (local(*TUESDAY, 16, 30), "Ana", "Cleaning", errors.OutsideHours),  # past closing
        (local(2026, 3, 14, 9), "Ana", "Checkup", errors.OutsideHours),  # Saturday off
        (local(*TUESDAY, 9, 7), "Ana", "Checkup", errors.OffGrid),
        (local(2026, 3, 13, 9), "Ana", "Checkup", errors.Closed),  # training day
        (local(*TUESDAY, 9), "Ben", "Cleaning", errors.NotOffered),
    ],
)
def test_refusals_say_why(shop: Shop, start: datetime, staff: str, service: str,
                          error: type[errors.BookingError]) -> None:
    with pytest.raises(error):
        book(shop, service, start, staff)
    assert Appointment.objects.count() == 0
    assert Customer.objects.count() == 0


def test_last_slot_before_lunch_fits_exactly(shop: Shop) -> None:
    appointment = book(shop, "Checkup", local(*TUESDAY, 11, 30), "Ana")
    assert appointment.end == local(*TUESDAY, 12)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"start": datetime(2026, 3, 10, 9)}, "start"),  # naive
        ({"service_id": 0}, "service"),
        ({"service_id": 999}, "service"),
        ({"staff_id": 999}, "staff"),
        ({"channel": "fax"}, "channel"),
        ({"notes": "x" * 2001}, "notes"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "k" * 101}, "idempotency_key"),
    ],
)
def test_invalid_input_names_the_field(shop: Shop, kwargs: dict[str, Any], field: str) -> None:
    params: dict[str, Any] = {
        "service_id": shop.services["Checkup"], "start": local(*TUESDAY, 9),
        "customer": ada(), "channel": "web",
    } | kwargs
    with pytest.raises(errors.InvalidInput) as caught:
        appointment_book(**params)
    assert caught.value.field == field
    assert Appointment.objects.count() == 0


def test_write_path_refuses_to_nest_in_another_transaction(shop: Shop) -> None:
    with pytest.raises(RuntimeError), tenant_atomic():
        book(shop, "Checkup", local(*TUESDAY, 9))


# --- idempotency ---------------------------------------------------------------------------


def test_same_idempotency_key_and_request_returns_the_first_appointment(
    shop: Shop, events: list[dict[str, Any]]
) -> None:
    first = book(shop, "Checkup", local(*TUESDAY, 9), "Ana", idempotency_key="req-1")
    again = book(shop, "Checkup", local(*TUESDAY, 9), "Ana", idempotency_key="req-1")
    assert again.pk == first.pk
    assert Appointment.objects.count() == 1
    assert [e["kind"] for e in events] == ["booked"]


def test_same_idempotency_key_with_another_request_is_refused(shop: Shop) -> None:
    book(shop, "Checkup", local(*TUESDAY, 9), "Ana", idempotency_key="req-1")
    with pytest.raises(errors.IdempotencyKeyReused) as caught:
        book(shop, "Checkup", local(*TUESDAY, 10), "Ana", idempotency_key="req-1")
    assert caught.value.code == "idempotency_key_reused"
    assert caught.value.http_status == 409
    assert Appointment.objects.count() == 1


# --- plan limit ------------------------------------------------------------------------------


def _weekday_starts(first: date) -> Iterator[datetime]:
    day = first
    while True:
        if day.weekday() < 5 and day != date(2026, 3, 13):
            for hour in (9, 10, 11, 13, 14, 15, 16):
                for minute in (0, 30):
                    yield datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY)
        day += timedelta(days=1)


def test_starter_plan_refuses_the_101st_booking_of_the_month(make_shop: MakeShop,
                                                              frozen: Any) -> None:
    starter = make_shop(plan="starter")
    with tenant_context(starter.tenant):
        customer = customer_upsert(name="Ada", phone="+12125550100")
        starts = _weekday_starts(date(2026, 3, 3))
        booked: list[Appointment] = []
        while len(booked) < 100:
            start = next(starts)
            for staff in ("Ana", "Ben"):
                if len(booked) < 100:
                    booked.append(book(starter, "Checkup", start, staff, customer=customer))
        assert appointments_count_this_month() == 100
        spare = next(starts)
        with pytest.raises(errors.PlanLimitReached) as caught:
            book(starter, "Checkup", spare, "Ana", customer=customer)
        assert caught.value.http_status == 402
        assert Appointment.objects.count() == 100

        # Cancelled appointments do not count against the limit.
        appointment_cancel(appointment=booked[-1], by_customer=False)
        assert appointments_count_this_month() == 99
        book(starter, "Checkup", spare, "Ana", customer=customer)
        with pytest.raises(errors.PlanLimitReached):
            book(starter, "Checkup", next(starts), "Ana", customer=customer)

        # A new calendar month (in the business's zone) starts from zero.
        frozen.move_to(datetime(2026, 4, 1, 4, 30, tzinfo=UTC))  # 00:30 EDT on April 1st
        assert appointments_count_this_month() == 0
        book(starter, "Checkup", local(2026, 4, 7, 9), "Ana", customer=customer)


def test_month_is_counted_in_the_business_zone(shop: Shop, frozen: Any) -> None:
    # 23:30 on March 31st in New York is already April in UTC.
    frozen.move_to(datetime(2026, 4, 1, 3, 30, tzinfo=UTC))
    book(shop, "Checkup", local(2026, 4, 7, 9), "Ana")
    assert appointments_count_this_month() == 1
    frozen.move_to(datetime(2026, 4, 1, 4, 30, tzinfo=UTC))
    assert appointments_count_this_month() == 0


def test_suspended_business_cannot_book(shop: Shop) -> None:
    shop.tenant.status = "suspended"
    with pytest.raises(errors.BookingPaused) as caught:
        book(shop, "Checkup", local(*TUESDAY, 9), "Ana")
    assert caught.value.http_status == 403


# --- cancel ---------------------------------------------------------------------------------


def test_cancel_frees_the_slot_and_records_when(shop: Shop, events: list[dict[str, Any]]) -> None:
    appointment = book(shop, "Cleaning", local(*TUESDAY, 9), "Ana")
    cancelled = appointment_cancel(appointment=appointment, by_customer=True)
    assert cancelled.status == Appointment.Status.CANCELLED
    assert cancelled.cancelled_at == datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert appointment.status == Appointment.Status.CANCELLED  # the caller's copy follows
    again = book(shop, "Cleaning", local(*TUESDAY, 9), "Ana", customer=ada("+12125550101"))
    assert again.pk != appointment.pk
    assert [e["kind"] for e in events] == ["booked", "cancelled", "booked"]
    assert events[1] == {"kind": "cancelled", "tenant_id": shop.tenant.pk,
                         "appointment_id": appointment.pk}


def test_customer_cannot_cancel_inside_the_notice_but_the_business_can(
    shop: Shop, frozen: Any
) -> None:
    appointment = book(shop, "Checkup", local(*TUESDAY, 9), "Ana")
    frozen.move_to(local(*TUESDAY, 7, 1))  # 1h59 before: notice is 2 hours
    with pytest.raises(errors.TooLateToCancel):
        appointment_cancel(appointment=appointment, by_customer=True)
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.BOOKED
    assert appointment_cancel(appointment=appointment, by_customer=False).status == "cancelled"


def test_customer_may_cancel_exactly_at_the_notice(shop: Shop, frozen: Any) -> None:
    appointment = book(shop, "Checkup", local(*TUESDAY, 9), "Ana")
    frozen.move_to(local(*TUESDAY, 7))
    assert appointment_cancel(appointment=appointment, by_customer=True).status == "cancelled"


def test_cancelling_twice_changes_nothing(shop: Shop, events: list[dict[str, Any]]) -> None:
    appointment = book(shop, "Checkup", local(*TUESDAY, 9), "Ana")
    first = appointment_cancel(appointment=appointment, by_customer=True)
    second = appointment_cancel(appointment=appointment, by_customer=True)
    assert second.cancelled_at == first.cancelled_at
    assert [e["kind"] for e in events] == ["booked", "cancelled"]


def test_completed_appointment_cannot_be_cancelled(shop: Shop, frozen: Any) -> None:
    appointment = book(shop, "Checkup", local(*TUESDAY, 9), "Ana")
    frozen.move_to(local(*TUESDAY, 9, 40))
    appointment_complete(appointment=appointment)
    with pytest.raises(errors.InvalidState):
        appointment_cancel(appointment=appointment, by_customer=False)


# --- reschedule ---------------------------------------------------------------------------------


def test_reschedule_keeps_the_reference_and_may_overlap_its_own_old_time(
    shop: Shop, events: list[dict[str, Any]]
) -> None:
    appointment = book(shop, "Cleaning", local(*TUESDAY, 9), "Ana")
    moved = appointment_reschedule(appointment=appointment, new_start=local(*TUESDAY, 9, 30),
                                   by_customer=True)
    assert moved.pk == appointment.pk and moved.reference == appointment.reference
    assert (moved.start, moved.staff_id) == (local(*TUESDAY, 9, 30), shop.staff["Ana"])
    assert moved.block_end == local(*TUESDAY, 10, 40)
    assert [e["kind"] for e in events] == ["booked", "rescheduled"]
    assert events[1]["previous_start"] == local(*TUESDAY, 9)
    assert events[1]["previous_staff_id"] == shop.staff["Ana"]
    # The old time is free again (09:00-09:30 fits a checkup before the moved cleaning).
    book(shop, "Checkup", local(*TUESDAY, 9), "Ana", customer=ada("+12125550101"))


def test_reschedule_onto_a_taken_slot_leaves_the_appointment_where_it_was(shop: Shop) -> None:
    appointment = book(shop, "Checkup", local(*TUESDAY, 9), "Ana")
    book(shop, "Checkup", local(*TUESDAY, 10), "Ana", customer=ada("+12125550101"))
    with pytest.raises(errors.SlotTaken):
        appointment_reschedule(appointment=appointment, new_start=local(*TUESDAY, 10),
                               staff_id=shop.staff["Ana"], by_customer=True)
    appointment.refresh_from_db()
    assert appointment.start == local(*TUESDAY, 9)


def test_reschedule_without_staff_prefers_the_same_person_then_anyone(shop: Shop) -> None:
    appointment = book(shop, "Checkup", local(*TUESDAY, 9), "Ben")
    same = appointment_reschedule(appointment=appointment, new_start=local(*TUESDAY, 14),
                                  by_customer=False)
    assert same.staff_id == shop.staff["Ben"]
    book(shop, "Checkup", local(*TUESDAY, 15), "Ben", customer=ada("+12125550101"))
    other = appointment_reschedule(appointment=appointment, new_start=local(*TUESDAY, 15),
                                   by_customer=False)
    assert other.staff_id == shop.staff["Ana"]


def test_customer_cannot_move_inside_the_notice(shop: Shop, frozen: Any) -> None:
    appointment = book(shop, "Checkup", local(*TUESDAY, 9), "Ana")
    frozen.move_to(local(*TUESDAY, 8))
    with pytest.raises(errors.TooLateToCancel):
        appointment_reschedule(appointment=appointment, new_start=local(*TUESDAY, 14),
                               by_customer=True)
    moved = appointment_reschedule(appointment=appointment, new_start=local(*TUESDAY, 14),
                                   by_customer=False)
    assert moved.start == local(*TUESDAY, 14)


def test_cancelled_appointment_cannot_be_moved(shop: Shop) -> None:
    appointment = book(shop, "Checkup", local(*TUESDAY, 9), "Ana")
    appointment_cancel(appointment=appointment, by_customer=True)
    with pytest.raises(errors.InvalidState):
        appointment_reschedule(appointment=appointment, new_start=local(*TUESDAY, 14),
                               by_customer=False)


# --- outcomes ---------------------------------------------------------------------------------


def test_no_show_only_once_the_appointment_has_started(shop: Shop, frozen: Any,
                                                        events: list[dict[str, Any]]) -> None:
    appointment = book(shop, "Checkup", local(*TUESDAY, 9), "Ana")
    with pytest.raises(errors.InvalidState):
        appointment_mark_no_show(appointment=appointment)
    frozen.move_to(local(*TUESDAY, 9, 20))
    assert appointment_mark_no_show(appointment=appointment).status == "no_show"
    assert appointment_complete(appointment=appointment).status == "completed"
    assert [e["kind"] for e in events] == ["booked", "no_show", "completed"]


def test_cancelled_appointment_cannot_be_a_no_show(shop: Shop, frozen: Any) -> None:
    appointment = book(shop, "Checkup", local(*TUESDAY, 9), "Ana")
    appointment_cancel(appointment=appointment, by_customer=False)
    frozen.move_to(local(*TUESDAY, 10))
    with pytest.raises(errors.InvalidState):
        appointment_mark_no_show(appointment=appointment)


def test_unknown_appointment_is_not_found(shop: Shop) -> None:
    appointment = book(shop, "Checkup", local(*TUESDAY, 9), "Ana")
    Appointment.objects.filter(pk=appointment.pk).delete()
    with pytest.raises(errors.AppointmentNotFound) as caught:
        appointment_cancel(appointment=appointment, by_customer=False)
    assert caught.value.http_status == 404


# --- signals ---------------------------------------------------------------------------------


def test_refused_booking_announces_nothing(shop: Shop, events: list[dict[str, Any]]) -> None:
    with pytest.raises(errors.OffGrid):
        book(shop, "Checkup", local(*TUESDAY, 9, 5), "Ana")
    assert events == []


def test_failing_listener_does_not_undo_the_booking(shop: Shop) -> None:
    def broken(sender: object, **kwargs: Any) -> None:
        raise RuntimeError("listener bug")

    signals.appointment_changed.connect(broken, weak=False)
    try:
        appointment = book(shop, "Checkup", local(*TUESDAY, 9), "Ana")
    finally:
        signals.appointment_changed.disconnect(broken)
    assert Appointment.objects.filter(pk=appointment.pk).exists()


# --- customers and lookups ---------------------------------------------------------------------


def test_customer_is_found_by_normalised_phone(shop: Shop) -> None:
    first = customer_upsert(name="Ada", phone="(212) 555-0100", email="")
    second = customer_upsert(name="Ada L.", phone="+1 212 555 0100", email="ada@example.com")
    assert first.pk == second.pk
    second.refresh_from_db()
    assert (second.name, second.phone, second.email) == ("Ada L.", "+12125550100",
                                                         "ada@example.com")
    # An empty email keeps the one on file, and the customer returned says so.
    kept = customer_upsert(name="Ada L.", phone="2125550100")
    second.refresh_from_db()
    assert second.email == kept.email == "ada@example.com"
    assert kept.created_at == second.created_at  # read when asked for


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"phone": "12"}, "phone"),
        ({"phone": "call me"}, "phone"),
        ({"phone": "+1 555 555 5555"}, "phone"),
        ({"name": "  "}, "name"),
        ({"name": "x" * 121}, "name"),
        ({"email": "not-an-email"}, "email"),
    ],
)
def test_customer_details_are_validated(shop: Shop, fields: dict[str, str], field: str) -> None:
    values = {"name": "Ada", "phone": "+12125550100", "email": ""} | fields
    with pytest.raises(errors.InvalidInput) as caught:
        customer_details_clean(**values)
    assert caught.value.field == field


def test_booking_with_new_customer_details_saves_them_only_on_success(shop: Shop) -> None:
    details = CustomerDetails(name="Bo", phone="+12125550199")
    with pytest.raises(errors.OffGrid):
        book(shop, "Checkup", local(*TUESDAY, 9, 1), "Ana", customer=details)
    assert not Customer.objects.filter(phone="+12125550199").exists()
    book(shop, "Checkup", local(*TUESDAY, 9), "Ana", customer=details)
    assert Customer.objects.filter(phone="+12125550199").exists()


def test_reference_lookup_needs_the_matching_phone(shop: Shop) -> None:
    appointment = book(shop, "Checkup", local(*TUESDAY, 9), "Ana")
    ref = appointment.reference
    assert appointment_by_reference(ref, "+12125550100") == appointment
    assert appointment_by_reference(ref.lower().replace("-", " "), "(212) 555-0100") == appointment
    assert appointment_by_reference(ref, "+12125550101") is None
    assert appointment_by_reference("AAA-AAA", "+12125550100") is None
    assert appointment_by_reference("not a ref") is None


def test_customer_sees_only_upcoming_booked_appointments(shop: Shop) -> None:
    kept = book(shop, "Checkup", local(*TUESDAY, 9), "Ana")
    gone = book(shop, "Checkup", local(*TUESDAY, 10), "Ana")
    book(shop, "Checkup", local(*TUESDAY, 11), "Ana", customer=ada("+12125550101"))
    appointment_cancel(appointment=gone, by_customer=True)
    assert list(appointments_for_customer("212-555-0100")) == [kept]
    assert len(appointments_for_customer("+12125550100", upcoming_only=False)) == 2


def test_search_refuses_long_or_backwards_ranges(shop: Shop) -> None:
    service = shop.services["Checkup"]
    with pytest.raises(errors.InvalidInput):
        slots_search(service_id=service, start_date=date(2026, 3, 1), end_date=date(2026, 4, 1))
    with pytest.raises(errors.InvalidInput):
        slots_search(service_id=service, start_date=date(2026, 3, 5), end_date=date(2026, 3, 4))
    assert slots_search(service_id=service, start_date=date(2026, 3, 1),
                        end_date=date(2026, 3, 31))


def test_search_window_by_part_of_day(shop: Shop) -> None:
    slots = slots_search(service_id=shop.services["Checkup"], start_date=date(*TUESDAY),
                         end_date=date(*TUESDAY), window="afternoon")
    assert slots and all(s.start.astimezone(NY).hour >= 13 for s in slots)
    with pytest.raises(errors.InvalidInput):
        slots_search(service_id=shop.services["Checkup"], start_date=date(*TUESDAY),
                     end_date=date(*TUESDAY), window="midnight")


def test_time_machine_freezes_the_write_path_clock(shop: Shop) -> None:
    with time_machine.travel(datetime(2026, 3, 10, 12, 59, tzinfo=UTC), tick=False), \
            pytest.raises(errors.TooSoon):
        book(shop, "Checkup", local(*TUESDAY, 9), "Ana")  # 09:00 EDT is 13:00 UTC
