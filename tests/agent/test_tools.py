from __future__ import annotations

import json
from datetime import datetime

import pytest

from agent.facts import business_facts
from agent.tools import MAX_FAILED_LOOKUPS, TOOLS, ToolRunner
from booking.models import Appointment, WaitlistEntry
from booking.services import appointment_book
from tenants.context import tenant_context
from tests.agent.conftest import NOW, MakeRunner
from tests.booking.conftest import MakeShop, Shop, ada, local

ADA_PHONE = "+12125550100"


def book_for_ada(shop: Shop, start: datetime, service: str = "Cleaning") -> Appointment:
    return appointment_book(service_id=shop.services[service], start=start, customer=ada(),
                            channel="web", now=NOW)


# --- schemas ------------------------------------------------------------------------------


def test_every_tool_has_a_generated_schema_without_a_business_argument() -> None:
    schemas = {s["function"]["name"]: s for s in ToolRunner.schemas()}
    assert set(schemas) == {
        "list_services", "check_availability", "create_appointment", "cancel_appointment",
        "reschedule_appointment", "find_my_appointments", "join_waitlist", "business_info",
    }
    for name, schema in schemas.items():
        assert schema["type"] == "function"
        parameters = schema["function"]["parameters"]
        assert parameters["type"] == "object"
        assert parameters["additionalProperties"] is False, name
        assert not {"tenant", "slug", "business", "tenant_id"} & set(parameters["properties"])
        json.dumps(schema)  # plain JSON, ready for the request
    create = schemas["create_appointment"]["function"]["parameters"]
    assert set(create["required"]) == {"service", "start", "name", "phone"}
    assert create["properties"]["start"]["format"] == "date-time"


# --- availability and booking -------------------------------------------------------------


def test_availability_is_listed_in_the_business_zone(make_runner: MakeRunner) -> None:
    runner = make_runner()
    result = runner.run("check_availability", {"service": "Cleaning", "date": "2026-03-03"})
    assert result["ok"] is True
    assert result["timezone"] == "America/New_York"
    starts = [slot["start"] for slot in result["slots"]]
    assert starts[0] == "2026-03-03T09:00:00-05:00"
    assert all(s.startswith("2026-03-03T") and s.endswith("-05:00") for s in starts)
    assert result["slots"][0]["staff"] == "Ana"
    assert result["slots"][0]["when"] == "Tuesday, March 3 at 9:00 AM"


def test_an_exact_time_says_whether_it_is_free_and_offers_the_nearest(
    shop: Shop, make_runner: MakeRunner
) -> None:
    book_for_ada(shop, local(2026, 3, 3, 10, 0))
    runner = make_runner()
    free = runner.run("check_availability",
                      {"service": "Cleaning", "date": "2026-03-03", "time": "14:00"})
    assert free["available"] is True
    assert [s["start"] for s in free["slots"]] == ["2026-03-03T14:00:00-05:00"]

    taken = runner.run("check_availability",
                       {"service": "Cleaning", "date": "2026-03-03", "time": "10:00"})
    assert taken["available"] is False
    assert taken["slots"], "nearest times are offered"
    assert "2026-03-03T10:00:00-05:00" not in [s["start"] for s in taken["slots"]]


def test_a_part_of_the_day_narrows_the_search(make_runner: MakeRunner) -> None:
    result = make_runner().run("check_availability", {
        "service": "Checkup", "date": "2026-03-03", "part_of_day": "afternoon", "after": "15:00",
    })
    hours = {datetime.fromisoformat(s["start"]).hour for s in result["slots"]}
    assert hours and hours <= {15, 16}


def test_only_a_slot_the_tools_offered_can_be_booked(make_runner: MakeRunner) -> None:
    runner = make_runner()
    result = runner.run("create_appointment", {
        "service": "Cleaning", "start": "2026-03-03T09:00:00-05:00",
        "name": "Ada Lovelace", "phone": ADA_PHONE,
    })
    assert result["ok"] is False
    assert result["error"] == "not_checked"
    assert not Appointment.objects.exists()


def test_booking_goes_through_the_write_path_with_the_conversation_channel(
    make_runner: MakeRunner,
) -> None:
    runner = make_runner(channel="phone", caller_phone=ADA_PHONE)
    offered = runner.run("check_availability",
                         {"service": "Cleaning", "date": "2026-03-03", "time": "09:00"})
    slot = offered["slots"][0]
    result = runner.run("create_appointment", {
        "service": "Cleaning", "start": slot["start"], "staff_id": slot["staff_id"],
        "name": "Ada Lovelace", "phone": "(212) 555-0100", "email": "ada@example.com",
    })
    assert result["ok"] is True, result
    appointment = Appointment.objects.get(reference=result["reference"])
    assert appointment.channel == "phone"
    assert appointment.customer.phone == ADA_PHONE
    assert appointment.start == local(2026, 3, 3, 9, 0)
    assert result["manage_url"].startswith("http")
    assert runner.outcome == "booked"
    assert runner.verified_phone == ADA_PHONE
    assert [call.name for call in runner.calls] == ["check_availability", "create_appointment"]


def test_a_naive_start_is_read_as_the_business_wall_clock(make_runner: MakeRunner) -> None:
    runner = make_runner()
    runner.run("check_availability", {"service": "Checkup", "date": "2026-03-03"})
    result = runner.run("create_appointment", {
        "service": "Checkup", "start": "2026-03-03T09:00:00", "name": "Ada Lovelace",
        "phone": ADA_PHONE,
    })
    assert result["ok"] is True, result
    assert Appointment.objects.get().start == local(2026, 3, 3, 9, 0)


def test_domain_errors_come_back_as_structured_results(
    shop: Shop, make_runner: MakeRunner
) -> None:
    runner = make_runner()
    slot = runner.run("check_availability",
                      {"service": "Cleaning", "date": "2026-03-03", "time": "09:00"})["slots"][0]
    bad_phone = runner.run("create_appointment", {
        "service": "Cleaning", "start": slot["start"], "name": "Ada", "phone": "12345",
    })
    assert bad_phone == {"ok": False, "error": "invalid_input", "field": "phone",
                         "message": bad_phone["message"]}
    book_for_ada(shop, local(2026, 3, 3, 9, 0))
    taken = runner.run("create_appointment", {
        "service": "Cleaning", "start": slot["start"], "name": "Grace Hopper",
        "phone": "+12125550199",
    })
    assert taken["ok"] is False
    assert taken["error"] == "slot_taken"
    assert taken["message"]
    unknown = runner.run("check_availability", {"service": "Haircut"})
    assert unknown["error"] == "invalid_input"
    assert "Cleaning" in unknown["message"]


@pytest.mark.parametrize("extra", [{"tenant": "biz-2"}, {"slug": "other"}, {"business": 1}])
def test_arguments_the_schema_does_not_name_are_refused(
    make_runner: MakeRunner, extra: dict[str, object]
) -> None:
    runner = make_runner()
    result = runner.run("list_services", extra)
    assert result["ok"] is False
    assert result["error"] == "invalid_arguments"


def test_broken_calls_are_answered_not_raised(make_runner: MakeRunner) -> None:
    runner = make_runner()
    assert runner.run("drop_database", {})["error"] == "unknown_tool"
    assert runner.run("list_services", "{not json")["error"] == "invalid_arguments"
    assert runner.run("list_services", "[1, 2]")["error"] == "invalid_arguments"
    assert runner.run("check_availability", {"service": "Cleaning", "date": "soon"})[
        "error"] == "invalid_arguments"
    assert len(runner.calls) == 4


def test_a_runner_is_bound_to_its_business(make_shop: MakeShop, shop: Shop) -> None:
    runner = ToolRunner(channel="chat", now=NOW, facts=business_facts(now=NOW))
    other = make_shop()
    with tenant_context(other.tenant), pytest.raises(RuntimeError):
        runner.run("list_services", {})


# --- the customer's own appointments ------------------------------------------------------


def test_cancelling_needs_the_reference_and_the_phone_it_was_booked_with(
    shop: Shop, make_runner: MakeRunner
) -> None:
    appointment = book_for_ada(shop, local(2026, 3, 4, 9, 0))
    runner = make_runner()
    wrong = runner.run("cancel_appointment",
                       {"reference": appointment.reference, "phone": "+12125550199"})
    assert wrong["ok"] is False
    assert wrong["error"] == "not_found"
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.BOOKED

    right = runner.run("cancel_appointment",
                       {"reference": appointment.reference.lower().replace("-", ""),
                        "phone": "212 555 0100"})
    assert right["ok"] is True, right
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CANCELLED
    assert runner.outcome == "cancelled"


def test_a_wrong_reference_and_an_unknown_one_look_the_same(
    shop: Shop, make_runner: MakeRunner
) -> None:
    appointment = book_for_ada(shop, local(2026, 3, 4, 9, 0))
    runner = make_runner()
    wrong_phone = runner.run("cancel_appointment",
                             {"reference": appointment.reference, "phone": "+12125550199"})
    unknown = runner.run("cancel_appointment", {"reference": "ZZZ-ZZZ", "phone": ADA_PHONE})
    assert wrong_phone == unknown


def test_repeated_failed_lookups_lock_the_conversation_out(
    shop: Shop, make_runner: MakeRunner
) -> None:
    appointment = book_for_ada(shop, local(2026, 3, 4, 9, 0))
    runner = make_runner()
    for n in range(MAX_FAILED_LOOKUPS):
        runner.run("cancel_appointment", {"reference": "ZZZ-ZZ" + "23456789"[n],
                                          "phone": ADA_PHONE})
    locked = runner.run("cancel_appointment",
                        {"reference": appointment.reference, "phone": ADA_PHONE})
    assert locked["error"] == "too_many_attempts"
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.BOOKED
    # The count is part of the conversation's memory: a new turn stays locked.
    again = make_runner(memory=runner.memory)
    assert again.run("find_my_appointments", {"phone": ADA_PHONE,
                                              "reference": appointment.reference})[
        "error"] == "too_many_attempts"


def test_on_the_phone_the_caller_id_proves_the_customer(
    shop: Shop, make_runner: MakeRunner
) -> None:
    appointment = book_for_ada(shop, local(2026, 3, 4, 9, 0))
    chat = make_runner()
    assert chat.run("cancel_appointment", {"reference": appointment.reference})[
        "error"] == "phone_required"
    stranger = make_runner(channel="phone", caller_phone="+12125550199")
    assert stranger.run("cancel_appointment", {"reference": appointment.reference})[
        "error"] == "not_found"
    caller = make_runner(channel="phone", caller_phone=ADA_PHONE)
    listed = caller.run("find_my_appointments", {})
    assert [a["reference"] for a in listed["appointments"]] == [appointment.reference]
    assert caller.run("cancel_appointment", {"reference": appointment.reference})["ok"] is True


def test_in_chat_a_phone_number_alone_shows_no_appointments(
    shop: Shop, make_runner: MakeRunner
) -> None:
    appointment = book_for_ada(shop, local(2026, 3, 4, 9, 0))
    runner = make_runner()
    refused = runner.run("find_my_appointments", {"phone": ADA_PHONE})
    assert refused["error"] == "verification_needed"
    assert "appointments" not in refused
    proven = runner.run("find_my_appointments",
                        {"phone": ADA_PHONE, "reference": appointment.reference})
    assert [a["reference"] for a in proven["appointments"]] == [appointment.reference]
    # Proven once in this conversation, the phone number is enough afterwards.
    assert runner.run("find_my_appointments", {"phone": ADA_PHONE})["ok"] is True


def test_rescheduling_moves_to_a_checked_slot_and_keeps_the_reference(
    shop: Shop, make_runner: MakeRunner
) -> None:
    appointment = book_for_ada(shop, local(2026, 3, 4, 9, 0))
    runner = make_runner()
    unchecked = runner.run("reschedule_appointment", {
        "reference": appointment.reference, "phone": ADA_PHONE,
        "new_start": "2026-03-05T14:00:00-05:00",
    })
    assert unchecked["error"] == "not_checked"
    runner.run("check_availability", {"service": "Cleaning", "date": "2026-03-05",
                                      "time": "14:00"})
    moved = runner.run("reschedule_appointment", {
        "reference": appointment.reference, "phone": ADA_PHONE,
        "new_start": "2026-03-05T14:00:00-05:00",
    })
    assert moved["ok"] is True, moved
    appointment.refresh_from_db()
    assert appointment.start == local(2026, 3, 5, 14, 0)
    assert moved["reference"] == appointment.reference
    assert runner.outcome == "rescheduled"


# --- waitlist and information -------------------------------------------------------------


def test_joining_the_waitlist_needs_a_plan_with_it(make_shop: MakeShop, frozen: object) -> None:
    args = {"service": "Cleaning", "date": "2026-03-03", "end_date": "2026-03-04",
            "part_of_day": "morning", "name": "Ada Lovelace", "phone": ADA_PHONE}
    starter = make_shop(plan="starter")
    with tenant_context(starter.tenant):
        runner = ToolRunner(channel="chat", now=NOW, facts=business_facts(now=NOW))
        assert runner.run("join_waitlist", args)["error"] == "feature_not_in_plan"
        assert not WaitlistEntry.objects.exists()
    standard = make_shop(plan="standard")
    with tenant_context(standard.tenant):
        runner = ToolRunner(channel="chat", now=NOW, facts=business_facts(now=NOW))
        result = runner.run("join_waitlist", args)
        assert result["ok"] is True, result
        entry = WaitlistEntry.objects.get()
        assert entry.customer.phone == ADA_PHONE
        assert entry.windows == [
            {"date": "2026-03-03", "start": "08:00", "end": "12:00"},
            {"date": "2026-03-04", "start": "08:00", "end": "12:00"},
        ]
        assert runner.outcome == "waitlisted"
        # Asking again does not queue the customer twice.
        again = runner.run("join_waitlist", args | {"part_of_day": "afternoon"})
        assert again["error"] == "already_waiting"
        assert WaitlistEntry.objects.count() == 1


def test_business_info_reports_hours_policies_and_prices(make_runner: MakeRunner) -> None:
    runner = make_runner()
    everything = runner.run("business_info", {})
    assert everything["name"] == "Test Dental"
    assert everything["hours"]["mon"] == [["09:00", "12:00"], ["13:00", "17:00"]]
    assert everything["hours"]["sat"] == []
    assert everything["policies"]["cancellation_notice_minutes"] == 120
    assert everything["closures"][0]["reason"] == "Training day"
    prices = runner.run("business_info", {"topic": "prices"})
    assert {"name": "Cleaning", "price": "120.00", "duration_minutes": 60} in prices["services"]
    services = runner.run("list_services", {})["services"]
    assert [s["name"] for s in services] == ["Cleaning", "Checkup", "Whitening"]
    assert services[0]["staff"] == ["Ana"]


def test_tools_registry_matches_the_schemas() -> None:
    assert list(TOOLS) == [s["function"]["name"] for s in ToolRunner.schemas()]
