"""The offline dialogue as a state machine, against an in-memory stand-in for the tools.

No database: `FakeTools` answers the tool calls the way agent.tools does (same
names, arguments and result shapes) from a tiny diary, and records every call
so the tests can check what the dialogue did, not just what it said.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import replies
from agent.dialogue import BusinessInfo, DialogueResult, ServiceInfo, respond
from agent.language import Intent, parse

NY = ZoneInfo("America/New_York")
# A Tuesday morning at the business.
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=NY)
WEEKDAY = [(time(9), time(12)), (time(13), time(17))]
HOURS = dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), WEEKDAY) | {"sun": [(time(9), time(12))]}
SERVICES = (
    ServiceInfo("Cleaning", Decimal("120.00"), 60, staff=("Ana",)),
    ServiceInfo("Checkup", Decimal("80.00"), 30, staff=("Ana", "Ben")),
    ServiceInfo("Whitening", Decimal("350.50"), 90, staff=("Ana", "Ben")),
)
STAFF_IDS = {"Ana": 1, "Ben": 2}
PHONE = "+12125550142"


def business(**overrides: Any) -> BusinessInfo:
    values: dict[str, Any] = {
        "name": "Bright Smile",
        "tz": NY,
        "services": SERVICES,
        "staff": ("Ana", "Ben"),
        "hours": HOURS,
        "closures": (
            {"start": "2026-12-24T00:00:00-05:00", "end": "2026-12-26T00:00:00-05:00",
             "reason": "Holidays"},
        ),
        "address": "1 Main St, Springfield",
        "phone": "+12125550100",
        "waitlist": True,
        "cancellation_notice_minutes": 120,
        "max_days_ahead": 60,
    }
    return BusinessInfo(**(values | overrides))


class FakeTools:
    """The tools' contract over a small diary: 30-minute slots in opening hours."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.booked: dict[str, dict[str, Any]] = {}
        self.taken: set[datetime] = set()
        self.waitlist: list[dict[str, Any]] = []
        self.forced: dict[str, dict[str, Any]] = {}
        self.verified: set[str] = set()
        self.caller: str | None = None  # caller ID: proof of the phone, as on a call
        self.returned: set[str] = set()
        self._refs = (f"K{n}Q-4MZ" for n in range(2, 10))

    def __call__(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((name, dict(args)))
        if name in self.forced:
            return self.forced.pop(name)
        handler = getattr(self, name)
        result: dict[str, Any] = handler(**args)
        return result

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def args_of(self, name: str) -> list[dict[str, Any]]:
        return [args for n, args in self.calls if n == name]

    # --- the diary ---

    def free(self, service: str, day: date, staff: str | None = None) -> list[dict[str, Any]]:
        info = next(s for s in SERVICES if s.name == service)
        who = [staff] if staff else list(info.staff)
        spans = HOURS.get(replies.DAY_KEYS[day.weekday()], [])
        slots = []
        for a, b in spans:
            start = datetime.combine(day, a, NY)
            while start + timedelta(minutes=info.duration_minutes) <= datetime.combine(day, b, NY):
                if start > NOW + timedelta(hours=1) and start not in self.taken:
                    member = who[0]
                    slots.append({
                        "start": start.isoformat(),
                        "end": (start + timedelta(minutes=info.duration_minutes)).isoformat(),
                        "when": "",
                        "staff": member,
                        "staff_id": STAFF_IDS[member],
                    })
                start += timedelta(minutes=30)
        return slots

    # --- tools ---

    def check_availability(self, service: str, date: str | None = None,
                           end_date: str | None = None, part_of_day: str | None = None,
                           time: str | None = None, staff: str | None = None) -> dict[str, Any]:
        if service not in {s.name for s in SERVICES}:
            return {"ok": False, "error": "invalid_input", "message": "No such service.",
                    "field": "service"}
        first = datetime.fromisoformat(date).date() if date else NOW.date()
        last = datetime.fromisoformat(end_date).date() if end_date and not time else first
        slots: list[dict[str, Any]] = []
        day = first
        while day <= last:
            slots.extend(self.free(service, day, staff))
            day += timedelta(days=1)
        if time:
            wanted = datetime.fromisoformat(f"{first}T{time}").replace(tzinfo=NY)
            exact = [s for s in slots if datetime.fromisoformat(s["start"]) == wanted]
            if exact:
                self.returned.add(exact[0]["start"])
                return {"ok": True, "available": True, "slots": exact[:1]}
            near = sorted(slots, key=lambda s: abs(datetime.fromisoformat(s["start"]) - wanted))
            picked = sorted(near[:5], key=lambda s: s["start"])
            self.returned.update(s["start"] for s in picked)
            return {"ok": True, "available": False, "slots": picked}
        if part_of_day:
            bounds = {"morning": (8, 12), "afternoon": (12, 17), "evening": (17, 21)}[part_of_day]
            slots = [s for s in slots
                     if bounds[0] <= datetime.fromisoformat(s["start"]).hour < bounds[1]]
        picked, per_day = [], {}
        for slot in slots:
            d = slot["start"][:10]
            if per_day.get(d, 0) < 3 and len(picked) < 10:
                per_day[d] = per_day.get(d, 0) + 1
                picked.append(slot)
        self.returned.update(s["start"] for s in picked)
        return {"ok": True, "available": bool(picked), "slots": picked}

    def create_appointment(self, service: str, start: str, name: str, phone: str,
                           staff_id: int | None = None, email: str | None = None) -> dict[str, Any]:
        at = datetime.fromisoformat(start)
        if at in self.taken:
            return {"ok": False, "error": "slot_taken",
                    "message": "Sorry, that time has just been taken. Please choose another."}
        self.taken.add(at)
        reference = next(self._refs)
        staff = next(n for n, i in STAFF_IDS.items() if i == staff_id) if staff_id else "Ana"
        self.booked[reference] = {"reference": reference, "service": service, "staff": staff,
                                  "start": start, "phone": phone, "status": "booked"}
        self.verified.add(phone)
        return {"ok": True, **self._out(reference)}

    def _out(self, reference: str) -> dict[str, Any]:
        a = self.booked[reference]
        return {k: a[k] for k in ("reference", "service", "staff", "start", "status")}

    def _own(self, reference: str, phone: str | None) -> dict[str, Any] | None:
        a = self.booked.get(reference)
        if a is None or a["phone"] not in {phone, self.caller} - {None}:
            return None
        self.verified.add(phone)
        return a

    def cancel_appointment(self, reference: str, phone: str | None = None) -> dict[str, Any]:
        a = self._own(reference, phone)
        if a is None:
            return {"ok": False, "error": "not_found", "message": "No appointment matches."}
        a["status"] = "cancelled"
        self.taken.discard(datetime.fromisoformat(a["start"]))
        return {"ok": True, **self._out(reference)}

    def reschedule_appointment(self, reference: str, new_start: str, phone: str | None = None,
                               staff_id: int | None = None) -> dict[str, Any]:
        a = self._own(reference, phone)
        if a is None:
            return {"ok": False, "error": "not_found", "message": "No appointment matches."}
        self.taken.discard(datetime.fromisoformat(a["start"]))
        a["start"] = new_start
        self.taken.add(datetime.fromisoformat(new_start))
        return {"ok": True, **self._out(reference)}

    def find_my_appointments(self, phone: str | None = None,
                             reference: str | None = None) -> dict[str, Any]:
        phone = phone or self.caller
        if phone is None:
            return {"ok": False, "error": "phone_required", "message": "Ask for the phone."}
        if phone not in self.verified and phone != self.caller:
            if reference is None:
                return {"ok": False, "error": "verification_needed", "message": "Reference."}
            if self._own(reference, phone) is None:
                return {"ok": False, "error": "not_found", "message": "No appointment matches."}
        mine = [self._out(r) for r, a in self.booked.items()
                if a["phone"] == phone and a["status"] == "booked"]
        return {"ok": True, "appointments": mine}

    def join_waitlist(self, service: str, name: str, phone: str, date: str | None = None,
                      end_date: str | None = None, part_of_day: str | None = None,
                      staff: str | None = None, email: str | None = None) -> dict[str, Any]:
        self.waitlist.append({"service": service, "name": name, "phone": phone, "date": date,
                              "end_date": end_date, "part_of_day": part_of_day})
        return {"ok": True, "service": service, "from": date, "to": end_date,
                "part_of_day": part_of_day, "status": "waiting"}


class Talk:
    """One conversation: feeds messages through respond() and keeps the state."""

    def __init__(self, tools: FakeTools | None = None, *, caller: str | None = None,
                 biz: BusinessInfo | None = None) -> None:
        self.tools = tools or FakeTools()
        self.tools.caller = caller
        self.caller = caller
        self.biz = biz or business()
        self.state: dict[str, Any] = {}
        self.last: DialogueResult | None = None

    def __call__(self, text: str) -> str:
        result = respond(state=self.state, text=text, now=NOW, business=self.biz,
                         call_tool=self.tools, caller_phone=self.caller)
        json.dumps(result.state)  # always storable as JSON
        self.state = result.state
        self.last = result
        return result.text

    @property
    def outcome(self) -> str | None:
        assert self.last is not None
        return self.last.outcome


@pytest.fixture
def talk() -> Talk:
    return Talk()


def assert_well_formed(text: str) -> None:
    assert text
    assert text.rstrip().endswith((".", "?", "!", "(yes/no)")), text
    assert not re.search(r"\*\*|^#|\|\s*-|\n", text), text  # no markdown, no tables


# --- booking -------------------------------------------------------------------------------


def test_a_booking_with_everything_at_once_asks_only_to_confirm(talk: Talk) -> None:
    reply = talk("Hi, I'm Jane Doe, 212-555-0142, can I get a cleaning tomorrow at 3?")
    assert reply.startswith("Good news: Wed Nov 25 at 3:00 PM is free with Ana.")
    assert reply.endswith(
        "Shall I book your Cleaning with Ana on Wed Nov 25 at 3:00 PM for Jane Doe, "
        "phone ending 0142? (yes/no)"
    )
    assert "create_appointment" not in talk.tools.names()
    reply = talk("yes")
    assert reply.startswith("You're booked: Cleaning with Ana on Wed Nov 25 at 3:00 PM.")
    assert "Your reference is K2Q-4MZ" in reply
    assert talk.outcome == "booked"
    assert talk.tools.args_of("create_appointment") == [{
        "service": "Cleaning", "start": "2026-11-25T15:00:00-05:00", "name": "Jane Doe",
        "phone": PHONE, "staff_id": 1,
    }]


def test_step_by_step_it_asks_one_thing_at_a_time(talk: Talk) -> None:
    assert "Which service would you like: Cleaning, Checkup or Whitening?" in talk(
        "I'd like to make an appointment"
    )
    assert talk("a checkup") == "Sure, Checkup. What day and time would suit you?"
    reply = talk("Thursday afternoon")
    assert reply.startswith("Here's what I have on Thu Nov 26 in the afternoon: 1) Thu Nov 26 at")
    assert reply.endswith("Which would you like?")
    second = talk.state["offers"][1]["start"]
    assert talk("the second one") == "What name should I put the booking under?"
    assert talk("Jane Doe") == "And what's the best phone number to reach you on?"
    reply = talk("212 555 0142")
    assert reply.startswith("Shall I book your Checkup with Ana on Thu Nov 26 at")
    assert talk.state["step"] == "confirm"
    talk("yes")
    assert talk.outcome == "booked"
    assert [a["start"] for a in talk.tools.args_of("create_appointment")] == [second]
    assert second.startswith("2026-11-26T1")


def test_every_time_offered_came_from_check_availability(talk: Talk) -> None:
    talk("do you have anything for a whitening next week?")
    offered = [o["start"] for o in talk.state["offers"]]
    assert 1 <= len(offered) <= 4
    assert set(offered) <= talk.tools.returned


@pytest.mark.parametrize("pick", ["2", "the second one", "option 2", "#2"])
def test_the_slot_can_be_picked_by_number(pick: str) -> None:
    talk = Talk()
    talk("cleaning on Thursday")
    offers = talk.state["offers"]
    assert talk(pick) == "What name should I put the booking under?"
    assert talk.state["chosen"] == offers[1]


def test_the_slot_can_be_picked_by_position_or_time(talk: Talk) -> None:
    talk("cleaning on Thursday")
    offers = talk.state["offers"]
    talk("the last one")
    assert talk.state["chosen"] == offers[-1]
    other = Talk()
    other("cleaning on Thursday")
    label = replies.clock(datetime.fromisoformat(offers[2]["start"]).time())
    other(f"the {label} one please")
    assert other.state["chosen"] == offers[2]


def test_a_number_out_of_range_is_asked_again(talk: Talk) -> None:
    talk("cleaning on Thursday")
    count = len(talk.state["offers"])
    reply = talk("15")
    assert reply.startswith(f"Please choose a number from 1 to {count}.")
    assert talk.state["chosen"] is None


def test_a_number_past_the_list_that_can_be_an_hour_is_a_time(talk: Talk) -> None:
    talk("a checkup on Thursday morning")
    assert len(talk.state["offers"]) == 4
    reply = talk("is 11 ok?")
    assert reply.startswith("Good news: Thu Nov 26 at 11:00 AM is free with Ana.")


def test_a_bare_weekday_is_read_inside_the_dates_being_discussed(talk: Talk) -> None:
    talk("a checkup sometime next week")
    talk("Tuesday")  # the one time offered that Tuesday
    assert talk.state["chosen"]["start"].startswith("2026-12-01T")
    talk("no")
    assert talk("Wednesday afternoon").startswith(
        "Here's what I have on Wed Dec 2 in the afternoon:"
    )
    fresh = Talk()
    fresh("a checkup sometime next week")
    assert fresh("this Wednesday").startswith("Here's what I have tomorrow, Wed Nov 25:")


def test_a_correction_of_the_day_keeps_the_time_and_the_service(talk: Talk) -> None:
    talk("can I get a cleaning tomorrow at 3")
    talk("Jane Doe")
    talk("212-555-0142")
    reply = talk("actually make it Friday")
    assert "Fri Nov 27 at 3:00 PM is free" in reply
    assert reply.endswith("Shall I book your Cleaning with Ana on Fri Nov 27 at 3:00 PM for "
                          "Jane Doe, phone ending 0142? (yes/no)")


def test_a_correction_of_the_time_keeps_the_day(talk: Talk) -> None:
    talk("a checkup on Thursday afternoon")
    reply = talk("no, 4pm")
    assert "Thu Nov 26 at 4:00 PM is free" in reply


def test_changing_the_service_keeps_day_and_time(talk: Talk) -> None:
    talk("a cleaning tomorrow at 10")
    talk("actually a whitening")
    assert talk.state["want"]["service"] == "Whitening"
    assert talk.state["chosen"]["start"] == "2026-11-25T10:00:00-05:00"


def test_saying_no_at_the_confirmation_books_nothing(talk: Talk) -> None:
    talk("I'm Jane Doe, 2125550142, cleaning tomorrow at 9")
    reply = talk("no")
    assert reply == "Okay, I haven't booked it. What other day or time would suit you?"
    assert "create_appointment" not in talk.tools.names()


def test_an_unavailable_exact_time_offers_the_nearest(talk: Talk) -> None:
    talk.tools.taken.add(datetime(2026, 11, 25, 15, 0, tzinfo=NY))
    reply = talk("cleaning tomorrow at 3pm")
    assert reply.startswith("Sorry, 3:00 PM isn't free tomorrow, Wed Nov 25.")
    assert "The nearest times are: 1) Wed Nov 25 at 2:00 PM" in reply
    assert "3:00 PM" not in reply.split("nearest")[1]


def test_a_slot_taken_before_confirming_is_apologised_for_and_others_offered(talk: Talk) -> None:
    talk("I'm Jane Doe, 212-555-0142, a cleaning tomorrow at 3")
    talk.tools.forced["create_appointment"] = {
        "ok": False, "error": "slot_taken", "message": "Sorry, that time has just been taken."}
    talk.tools.taken.add(datetime(2026, 11, 25, 15, 0, tzinfo=NY))
    reply = talk("yes")
    assert reply.startswith("Sorry, Wed Nov 25 at 3:00 PM has just been taken.")
    assert "1) Wed Nov 25 at" in reply
    assert talk.outcome is None
    assert talk.state["step"] == "slot"
    assert all(o["start"] != "2026-11-25T15:00:00-05:00" for o in talk.state["offers"])


def test_when_nothing_fits_the_waitlist_is_offered(talk: Talk) -> None:
    reply = talk("a cleaning on Saturday")
    assert reply.startswith("Sorry, we're closed on Sat Nov 28.")
    reply = talk("a cleaning next week after 5")
    assert reply.startswith(
        "Sorry, nothing is free between Mon Nov 30 and Sun Dec 6 in the evening."
    )
    assert "waitlist" in reply
    talk("put me on the waitlist")
    talk("Jane Doe")
    reply = talk("2125550142")
    assert reply.startswith("Done: you're on the waitlist for Cleaning between Mon Nov 30 and "
                            "Sun Dec 6 in the evening.")
    assert talk.outcome == "waitlisted"
    assert talk.tools.waitlist == [{
        "service": "Cleaning", "name": "Jane Doe", "phone": PHONE, "date": "2026-11-30",
        "end_date": "2026-12-06", "part_of_day": "evening"}]


def test_without_a_waitlist_it_offers_nearby_times_only() -> None:
    talk = Talk(biz=business(waitlist=False))
    reply = talk("a cleaning next week after 5")
    assert "waitlist" not in reply
    assert "The nearest openings are: 1) Mon Nov 30 at" in reply
    reply = talk("put me on the waitlist")
    assert reply.startswith("Sorry, Bright Smile doesn't keep a waitlist.")
    assert talk.tools.waitlist == []


def test_an_ambiguous_service_word_asks_which_one() -> None:
    biz = business(services=(*SERVICES, ServiceInfo("Deep Cleaning", "200", 90, staff=("Ana",))))
    talk = Talk(biz=biz)
    reply = talk("I need a cleaning and whitening appointment")
    assert reply.endswith("Which would you like: Cleaning or Whitening?")
    talk("the second")
    assert talk.state["want"]["service"] == "Whitening"


def test_a_single_service_business_never_asks_which_service() -> None:
    talk = Talk(biz=business(services=SERVICES[:1]))
    assert talk("I'd like an appointment") == "Sure, Cleaning. What day and time would suit you?"


def test_on_the_phone_the_caller_id_is_the_contact_number() -> None:
    talk = Talk(caller=PHONE)
    talk("my name is Jane Doe and I need a checkup on Monday at 9")
    assert talk.last is not None
    assert talk.last.text.endswith("for Jane Doe, at the number you're calling from? (yes/no)")
    talk("yes")
    assert talk.tools.args_of("create_appointment")[0]["phone"] == PHONE


def test_the_phone_offers_three_times_and_chat_four() -> None:
    phone, chat = Talk(caller=PHONE), Talk()
    phone("a checkup on Monday")
    chat("a checkup on Monday")
    assert (len(phone.state["offers"]), len(chat.state["offers"])) == (3, 4)


def test_later_and_earlier_shift_the_times_offered(talk: Talk) -> None:
    talk("a checkup on Thursday morning")
    last = max(o["start"] for o in talk.state["offers"])
    assert talk("anything later?").startswith("Here's what I have on Thu Nov 26 after")
    later = [o["start"] for o in talk.state["offers"]]
    assert later and min(later) > last
    reply = talk("earlier")
    assert all(o["start"] < min(later) for o in talk.state["offers"])
    assert reply.startswith("Here's what I have on Thu Nov 26 before")


def test_nothing_earlier_keeps_the_times_offered(talk: Talk) -> None:
    talk("a checkup on Thursday morning")
    offers = talk.state["offers"]
    assert offers[0]["start"] == "2026-11-26T09:00:00-05:00"
    reply = talk("anything earlier?")
    assert reply.startswith("Sorry, there's nothing earlier on Thu Nov 26 in the morning.")
    assert talk.state["offers"] == offers


def test_cancel_while_booking_drops_the_booking_being_made(talk: Talk) -> None:
    talk("cleaning tomorrow at 3")
    reply = talk("cancel")
    assert reply == "Okay, I won't book anything. Is there anything else I can help with?"
    assert talk.state["flow"] is None


# --- managing an appointment ---------------------------------------------------------------


def booked(tools: FakeTools, start: str = "2026-11-27T10:00:00-05:00") -> str:
    result = tools.create_appointment("Cleaning", start, "Ada", "+12125550100", staff_id=1)
    tools.verified.discard("+12125550100")  # booked elsewhere: this conversation proved nothing
    return str(result["reference"])


def test_cancelling_needs_the_reference_and_the_phone(talk: Talk) -> None:
    reference = booked(talk.tools)
    assert "What's your booking reference?" in talk("cancel my appointment")
    assert talk(reference.lower().replace("-", "")) == "And what phone number did you book with?"
    assert talk("212-555-0100") == (
        "Shall I cancel your Cleaning on Fri Nov 27 at 10:00 AM? (yes/no)"
    )
    assert "cancel_appointment" not in talk.tools.names()
    reply = talk("yes")
    assert reply.startswith("Done: your Cleaning on Fri Nov 27 at 10:00 AM is cancelled.")
    assert talk.outcome == "cancelled"
    assert talk.tools.booked[reference]["status"] == "cancelled"


def test_a_wrong_phone_is_refused_without_revealing_anything(talk: Talk) -> None:
    reference = booked(talk.tools)
    talk(f"cancel {reference}")
    reply = talk("212-555-0199")
    assert reply.startswith(
        "Sorry, I couldn't find a booking with that reference and phone number."
    )
    assert not re.search(r"Cleaning|Nov 27|10:00|Ana", reply)
    assert talk.tools.booked[reference]["status"] == "booked"
    assert talk.state["reference"] is None and talk.state["phone"] is None


def test_rescheduling_finds_the_booking_then_a_new_time(talk: Talk) -> None:
    reference = booked(talk.tools)
    talk("move my booking to Monday morning")
    talk(reference)
    reply = talk("2125550100")
    assert reply.startswith("Here's what I have on Mon Nov 30 in the morning: 1) Mon Nov 30 at")
    talk("1")
    assert talk.last is not None and talk.last.text.startswith(
        "Shall I move your Cleaning on Fri Nov 27 at 10:00 AM to Mon Nov 30 at 9:00 AM?")
    reply = talk("yes")
    assert reply.startswith("Done: your Cleaning is now on Mon Nov 30 at 9:00 AM with Ana.")
    assert f"Your reference stays {reference}." in reply
    assert talk.outcome == "rescheduled"
    assert talk.tools.args_of("reschedule_appointment") == [{
        "reference": reference, "new_start": "2026-11-30T09:00:00-05:00", "staff_id": 1,
        "phone": "+12125550100"}]


def test_a_new_time_said_before_the_reference_is_kept(talk: Talk) -> None:
    reference = booked(talk.tools)
    talk("I need to reschedule")
    assert "booking reference" in talk("Monday at 9 would be better")
    talk(reference)
    reply = talk("212-555-0100")
    assert reply == (
        "Good news: Mon Nov 30 at 9:00 AM is free with Ana. Shall I move your Cleaning on Fri "
        "Nov 27 at 10:00 AM to Mon Nov 30 at 9:00 AM? (yes/no)"
    )


def test_saying_no_to_cancelling_leaves_the_appointment(talk: Talk) -> None:
    reference = booked(talk.tools)
    talk(f"cancel {reference}, my number is 212-555-0100")
    reply = talk("no")
    assert reply.startswith("Okay, I've left your appointment as it is.")
    assert talk.tools.booked[reference]["status"] == "booked"
    assert "cancel_appointment" not in talk.tools.names()


def test_cancel_it_right_after_booking_means_that_booking(talk: Talk) -> None:
    talk("I'm Jane Doe, 212-555-0142, a cleaning tomorrow at 3")
    talk("yes")
    assert talk("actually, cancel it") == (
        "Shall I cancel your Cleaning on Wed Nov 25 at 3:00 PM? (yes/no)"
    )
    talk("yes")
    assert talk.outcome == "cancelled"


def test_the_caller_id_lists_the_callers_appointments() -> None:
    tools = FakeTools()
    booked(tools)
    talk = Talk(tools, caller="+12125550100")
    assert talk("when is my appointment?") == (
        "You have Cleaning with Ana on Fri Nov 27 at 10:00 AM (reference K2Q-4MZ). "
        "Is there anything else I can help with?"
    )


def test_in_chat_a_phone_alone_shows_nothing(talk: Talk) -> None:
    booked(talk.tools)
    talk("when is my appointment? my number is 212-555-0100")
    assert "reference" in (talk.last.text if talk.last else "")
    assert "Nov 27" not in (talk.last.text if talk.last else "")


# --- questions at any point ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("how much is whitening?", "Whitening costs $350.50 and takes 90 minutes."),
        ("what are your prices?",
         "Our prices: Cleaning $120, Checkup $80 and Whitening $350.50."),
        ("are you open Saturday?",
         "Sorry, we're closed on Sat Nov 28; we don't open on Saturdays."),
        ("are you open on Thursday?",
         "Yes, on Thu Nov 26 we're open 9:00 AM to 12:00 PM and 1:00 PM to 5:00 PM."),
        ("are you open on December 24?", "We're closed on Thu Dec 24 (Holidays)."),
        ("what are your hours?",
         "We're open Monday to Friday, 9:00 AM to 12:00 PM and 1:00 PM to 5:00 PM; "
         "Sunday, 9:00 AM to 12:00 PM."),
        ("where are you located?", "We're at 1 Main St, Springfield."),
        ("what's your cancellation policy?",
         "You can cancel or move an appointment here up to 2 hours before it starts; after "
         "that, please call us."),
        ("what services do you offer?", "We offer Cleaning, Checkup and Whitening."),
        ("how long does a cleaning take?",
         "Yes, we offer Cleaning: it takes 1 hour and costs $120."),
    ],
)
def test_questions_are_answered(talk: Talk, question: str, answer: str) -> None:
    assert talk(question).startswith(answer)


def test_a_question_mid_booking_is_answered_and_the_booking_resumes(talk: Talk) -> None:
    talk("I'd like a cleaning on Thursday")
    offers = talk.state["offers"]
    reply = talk("how much is whitening?")
    assert reply.startswith("Whitening costs $350.50 and takes 90 minutes. The times I can offer")
    assert talk.state["offers"] == offers
    assert talk.state["want"]["service"] == "Cleaning"
    reply = talk("are you open Saturday?")
    assert reply.startswith(
        "Sorry, we're closed on Sat Nov 28; we don't open on Saturdays. The times I can offer "
        "are 1)"
    )
    talk("1")
    assert talk.state["chosen"] == offers[0]


def test_a_service_question_leads_to_booking_it(talk: Talk) -> None:
    assert talk("do you do whitening?").endswith("Would you like to book Whitening?")
    assert talk("yes") == "Sure, Whitening. What day and time would suit you?"


# --- the rest of the conversation ----------------------------------------------------------


def test_asking_for_a_person_hands_off(talk: Talk) -> None:
    talk("cleaning tomorrow")
    reply = talk("can I talk to a real person?")
    assert reply.startswith("Of course. I'm passing you to a member of the team at Bright Smile.")
    assert talk.last is not None
    assert (talk.last.outcome, talk.last.finished) == ("handed_off", True)


def test_goodbye_finishes_the_conversation(talk: Talk) -> None:
    talk("thanks")
    reply = talk("no thanks, that's all")
    assert reply == "Thank you for contacting Bright Smile. Goodbye!"
    assert talk.last is not None and talk.last.finished


def test_gibberish_gets_a_helpful_sentence(talk: Talk) -> None:
    reply = talk("asdf qwerty zxcv")
    assert reply.startswith("Sorry, I didn't understand that. I can book, move or cancel")


def test_gibberish_mid_booking_repeats_the_question(talk: Talk) -> None:
    talk("I'd like a cleaning")
    assert talk("blorp") == "Sorry, I didn't understand that. What day and time would suit you?"


def test_out_of_scope_requests_are_declined_clearly(talk: Talk) -> None:
    reply = talk("can I pay my invoice here?")
    assert reply.startswith("I can't take payments or answer billing or insurance questions here.")
    talk("cleaning on Thursday")
    reply = talk("do you take insurance?")
    assert reply.startswith("I can't take payments or answer billing or insurance questions here.")
    assert "The times I can offer are 1)" in reply


def test_another_business_is_named_as_not_ours(talk: Talk) -> None:
    reply = talk("can you book me a checkup at Happy Teeth Dental on Monday at 9?")
    assert reply.startswith("I can only book with Bright Smile, not Happy Teeth Dental. Good news:")
    assert not talk("a checkup at Bright Smile Dental on Monday at 9").startswith("I can only")
    assert not Talk()("a checkup with Ana at 9 on Monday").startswith("I can only")


def test_a_yes_with_nothing_to_answer_asks_what_is_wanted(talk: Talk) -> None:
    reply = talk("yes")
    assert reply.startswith("Sorry, I'm not sure what that answers. What would you like to do?")


def test_without_a_waitlist_the_offered_times_stay_on_the_table() -> None:
    talk = Talk(biz=business(waitlist=False))
    talk("a cleaning next week after 5")
    offers = talk.state["offers"]
    reply = talk("can you put me on the waitlist?")
    assert "The times I can offer are 1)" in reply
    assert talk.state["offers"] == offers


def test_a_failing_tool_is_an_apology_not_an_exception(talk: Talk) -> None:
    def broken(name: str, args: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("database gone")

    result = respond(state={}, text="cleaning tomorrow at 3", now=NOW, business=business(),
                     call_tool=broken)
    assert result.text.startswith("Sorry, I couldn't check the diary just now.")
    assert result.outcome is None


def test_a_broken_state_starts_afresh() -> None:
    for state in ({"v": 1, "flow": 3}, {"v": 99}, {"want": "x"}, {"v": 1, "want": {}}):
        result = respond(state=state, text="hi", now=NOW, business=business(),
                         call_tool=FakeTools())
        assert result.text.startswith("Hello! I'm the booking assistant for Bright Smile.")


def test_a_state_that_keeps_failing_is_dropped(
    talk: Talk, caplog: pytest.LogCaptureFixture
) -> None:
    talk("I'd like a cleaning")
    talk.state["want"]["at"] = "not a time"  # e.g. written by an older version
    assert talk("tomorrow") == "Sorry, something went wrong on my side. Could you say that again?"
    assert talk.state["failures"] == 1
    talk("tomorrow")
    assert talk.state == {}
    assert talk("a cleaning tomorrow at 9").startswith("Good news: Wed Nov 25 at 9:00 AM is free")
    assert "offline dialogue failed on a turn" in caplog.text


def test_respond_does_not_mutate_the_state_it_is_given(talk: Talk) -> None:
    talk("cleaning on Thursday")
    before = json.dumps(talk.state, sort_keys=True)
    state = talk.state
    respond(state=state, text="2", now=NOW, business=business(), call_tool=talk.tools)
    assert json.dumps(state, sort_keys=True) == before


def test_a_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        respond(state={}, text="hi", now=NOW.replace(tzinfo=None), business=business(),
                call_tool=FakeTools())


# --- never raising, always a sentence ------------------------------------------------------


WRITES = {"create_appointment", "cancel_appointment", "reschedule_appointment"}


def read(text: str) -> Any:
    return parse(text, now=NOW, tz=NY, service_names=[x.name for x in SERVICES],
                 staff_names=["Ana", "Ben"])


SCRIPT_WORDS = [
    "yes", "no", "1", "2", "the first one", "cleaning", "whitening", "tomorrow", "Thursday",
    "at 3", "afternoon", "Jane Doe", "212-555-0142", "K2Q-4MZ", "cancel my appointment",
    "move it to Friday", "how much?", "are you open Sunday?", "put me on the waitlist",
    "anything later?", "actually make it Monday", "thanks", "", "???", "book",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(SCRIPT_WORDS), st.text(max_size=80)),
                min_size=1, max_size=8))
def test_respond_never_raises_and_always_answers_in_sentences(messages: list[str]) -> None:
    tools = FakeTools()
    booked(tools)
    talk = Talk(tools)
    for message in messages:
        writes = sum(n in WRITES for n in tools.names())
        reply = talk(message)
        if sum(n in WRITES for n in tools.names()) > writes:
            # Booking, cancelling and moving happen only on a yes to "Shall I ...?".
            assert Intent.YES in read(message).intents, message
        assert_well_formed(reply)
        assert "Sorry, something went wrong on my side" not in reply
        assert {o["start"] for o in talk.state["offers"]} <= tools.returned
        if talk.state.get("chosen"):
            assert talk.state["chosen"]["start"] in tools.returned


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["v", "flow", "step", "want", "offers", "chosen", "name"]),
                       st.one_of(st.none(), st.integers(), st.text(max_size=5),
                                 st.lists(st.integers(), max_size=2))),
       st.text(max_size=40))
def test_any_stored_state_is_survived(state: dict[str, Any], text: str) -> None:
    result = respond(state=state, text=text, now=NOW, business=business(), call_tool=FakeTools())
    assert_well_formed(result.text)


# --- phrasing helpers ----------------------------------------------------------------------


def test_phrasing_helpers() -> None:
    assert replies.clock(time(0, 5)) == "12:05 AM"
    assert replies.clock(time(12)) == "12:00 PM"
    assert replies.moment(datetime(2026, 11, 26, 14, 0, tzinfo=NY)) == "Thu Nov 26 at 2:00 PM"
    assert replies.money("1200.00") == "$1,200"
    assert replies.money(Decimal("80.5"), "£") == "£80.50"
    assert replies.money("n/a") == ""
    assert replies.numbered(["a", "b", "c"]) == "1) a, 2) b or 3) c"
    assert replies.duration(90) == "90 minutes" and replies.duration(120) == "2 hours"
    assert replies.window((time(17), time(21))) == "in the evening"
    assert replies.window((time(15), time(21))) == "after 3:00 PM"
    assert replies.window((time(8), time(10))) == "before 10:00 AM"
    assert replies.window((time(10, 1), time(21))) == "after 10:00 AM"
    assert replies.sentence("shall I? (yes/no)") == "Shall I? (yes/no)"
    assert replies.sentence("done") == "Done."


