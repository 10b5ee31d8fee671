from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.language import DateSpec, Expecting, Intent, Utterance, parse

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
# A Tuesday morning in the business's zone.
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=NY)
SERVICES = ("Cleaning", "Deep Cleaning", "Whitening", "Checkup", "Filling", "Root Canal")
STAFF = ("Dr. Lee", "Dr. Patel", "Sam")


def read(
    text: str,
    *,
    expecting: Expecting | None = None,
    now: datetime = NOW,
    tz: ZoneInfo = NY,
    region: str = "US",
    services: tuple[str, ...] = SERVICES,
    staff: tuple[str, ...] = STAFF,
) -> Utterance:
    return parse(
        text,
        now=now,
        tz=tz,
        service_names=services,
        staff_names=staff,
        default_region=region,
        expecting=expecting,
    )


def day(month: int, dom: int, year: int = 2026) -> DateSpec:
    return DateSpec.on(date(year, month, dom))


def days(start: tuple[int, int], end: tuple[int, int], year: int = 2026) -> DateSpec:
    return DateSpec(date(year, *start), date(year, *end))


# ---------------------------------------------------------------------------
# Intents


@pytest.mark.parametrize(
    ("text", "intents"),
    [
        ("I need an appointment Thursday afternoon", {Intent.BOOK}),
        ("can I get a cleaning tomorrow at 3", {Intent.BOOK}),
        ("I'd like to book a checkup", {Intent.BOOK}),
        ("hi i'd like to make an appointment", {Intent.GREETING, Intent.BOOK}),
        ("I'm looking for a cleaning", {Intent.BOOK}),
        ("cancel my appointment", {Intent.CANCEL}),
        ("I need to cancel my 3pm tomorrow", {Intent.CANCEL}),
        ("no, don't cancel it", {Intent.NO}),
        ("move my booking to Monday morning", {Intent.RESCHEDULE}),
        ("can I reschedule", {Intent.RESCHEDULE}),
        ("when is my appointment?", {Intent.FIND_MY_APPOINTMENTS}),
        ("do I have any bookings?", {Intent.FIND_MY_APPOINTMENTS}),
        ("anything next week after 5?", {Intent.AVAILABILITY}),
        ("what do you have on Friday", {Intent.AVAILABILITY}),
        ("is Dr. Lee available Friday?", {Intent.AVAILABILITY}),
        ("earliest available next week", {Intent.AVAILABILITY}),
        ("how much is whitening?", {Intent.PRICE}),
        ("what does a root canal cost", {Intent.PRICE}),
        ("are you open Saturday?", {Intent.HOURS}),
        ("what are your hours", {Intent.HOURS}),
        ("what time do you close today?", {Intent.HOURS}),
        ("what do you offer", {Intent.SERVICES}),
        ("what services do you have?", {Intent.SERVICES}),
        ("do you do whitening?", {Intent.SERVICES}),
        ("put me on the waitlist", {Intent.WAITLIST}),
        ("let me know if something opens up", {Intent.WAITLIST}),
        ("add me to the waiting list", {Intent.WAITLIST}),
        ("talk to a person", {Intent.HUMAN}),
        ("can I speak to the receptionist", {Intent.HUMAN}),
        ("I want to talk to someone", {Intent.HUMAN}),
        ("what's your cancellation policy?", {Intent.POLICY}),
        ("where are you located?", {Intent.LOCATION}),
        ("Hi", {Intent.GREETING}),
        ("Good morning!", {Intent.GREETING}),
        ("thanks, bye", {Intent.THANKS, Intent.GOODBYE}),
        ("no thanks, that's all", {Intent.NO, Intent.THANKS, Intent.GOODBYE}),
        ("yes", {Intent.YES}),
        ("yep", {Intent.YES}),
        ("sure", {Intent.YES}),
        ("that works", {Intent.YES}),
        ("book it", {Intent.YES}),
        ("sounds good", {Intent.YES}),
        ("correct", {Intent.YES}),
        ("no", {Intent.NO}),
        ("nope", {Intent.NO}),
        ("not that one", {Intent.NO}),
        ("something else", {Intent.NO, Intent.AVAILABILITY}),
        ("that doesn't work", {Intent.NO}),
        ("no problem", set()),
        ("actually make it Friday", {Intent.CORRECTION}),
        ("no, Thursday instead", {Intent.NO, Intent.CORRECTION}),
        ("change it to 4pm", {Intent.CORRECTION}),
        ("how about 4?", {Intent.CORRECTION}),
        ("Thursday, no, Friday", {Intent.CORRECTION}),
        ("actually my number is 212-555-0142", {Intent.CORRECTION}),
        ("Monday works", {Intent.YES}),
        ("Is tomorrow possible?", {Intent.AVAILABILITY}),
        ("is parking available?", {Intent.LOCATION}),
        ("How long does a cleaning take?", {Intent.SERVICES}),
        ("I have a toothache, can you see me today?", {Intent.BOOK}),
        ("Could you check if I'm booked for Thursday?", {Intent.FIND_MY_APPOINTMENTS}),
        ("Can I bring my kid?", set()),
        ("what works for you?", set()),
    ],
)
def test_intents(text: str, intents: set[Intent]) -> None:
    assert read(text).intents == intents


def test_a_greeting_is_not_a_morning_request() -> None:
    u = read("Good morning, I need a morning appointment")
    assert u.intents == {Intent.GREETING, Intent.BOOK}
    assert u.time_window == (time(8), time(12))
    assert read("Good morning").time_window is None


# ---------------------------------------------------------------------------
# Dates (NOW is Tuesday 2026-11-24)


@pytest.mark.parametrize(
    ("text", "dates"),
    [
        ("today", day(11, 24)),
        ("tomorrow", day(11, 25)),
        ("tmrw", day(11, 25)),
        ("tomorow", day(11, 25)),
        ("day after tomorrow", day(11, 26)),
        ("Tuesday", day(11, 24)),  # a bare weekday includes today
        ("Thursday", day(11, 26)),
        ("thurs", day(11, 26)),
        ("this Friday", day(11, 27)),
        ("next Monday", day(11, 30)),
        ("next Friday", day(12, 4)),  # the Friday of next calendar week
        ("next Tuesday", day(12, 1)),
        ("Friday after next", day(12, 4)),
        ("Thursday next week", day(12, 3)),
        ("next week Thursday", day(12, 3)),
        ("this week", days((11, 24), (11, 29))),
        ("next week", days((11, 30), (12, 6))),
        ("the week after next", days((12, 7), (12, 13))),
        ("early next week", days((11, 30), (12, 2))),
        ("later this week", days((11, 25), (11, 29))),
        ("the weekend", days((11, 28), (11, 29))),
        ("this weekend", days((11, 28), (11, 29))),
        ("next weekend", days((12, 5), (12, 6))),
        ("December 3", day(12, 3)),
        ("Dec 3rd", day(12, 3)),
        ("dec. 3", day(12, 3)),
        ("3rd of December", day(12, 3)),
        ("the third of december", day(12, 3)),
        ("December 3, 2027", day(12, 3, 2027)),
        ("Dec 3-5", days((12, 3), (12, 5))),
        ("12/3", day(12, 3)),
        ("12/3/2026", day(12, 3)),
        ("2026-12-03", day(12, 3)),
        ("March 5", day(3, 5, 2027)),  # already past this year
        ("11/20", day(11, 20, 2027)),
        ("the 15th", day(12, 15)),
        ("on the 30th", day(11, 30)),
        ("Friday the 4th", day(12, 4)),
        ("in 3 days", day(11, 27)),
        ("in three days", day(11, 27)),
        ("in 2 weeks", day(12, 8)),
        ("a week from today", day(12, 1)),
        ("in December", days((12, 1), (12, 31))),
        ("this month", days((11, 24), (11, 30))),
        ("Monday to Wednesday", days((11, 30), (12, 2))),
        ("between Monday and Wednesday", days((11, 30), (12, 2))),
        ("Monday or Wednesday", days((11, 25), (11, 30))),
        ("not Thursday, Friday", day(11, 27)),
        ("Friday instead of Thursday", day(11, 27)),
        ("thursday?? no wait friday", day(11, 27)),
    ],
)
def test_dates(text: str, dates: DateSpec) -> None:
    assert read(text).dates == dates


@pytest.mark.parametrize(
    "text",
    ["I sat down", "may I book", "the sun is out", "the first visit", "have a good weekend"],
)
def test_words_that_only_look_like_dates(text: str) -> None:
    assert read(text).dates is None


def test_invalid_calendar_dates_are_ignored() -> None:
    assert read("February 30").dates is None
    assert read("13/45").dates is None


def test_numeric_dates_follow_the_region() -> None:
    assert read("3/12", region="US").dates == day(3, 12, 2027)
    assert read("3/12", region="GB").dates == day(12, 3)
    # Only one reading is possible, whatever the region.
    assert read("25/12", region="US").dates == day(12, 25)


# ---------------------------------------------------------------------------
# Times


@pytest.mark.parametrize(
    ("text", "window", "exact"),
    [
        ("morning", (time(8), time(12)), None),
        ("afternoon", (time(12), time(17)), None),
        ("evening", (time(17), time(21)), None),
        ("late afternoon", (time(15), time(17)), None),
        ("after 5", (time(17), time(21)), None),
        ("after 9", (time(9), time(21)), None),
        ("before noon", (time(8), time(12)), None),
        ("by 3", (time(8), time(15)), None),
        ("between 2 and 4", (time(14), time(16)), None),
        ("between 10 and 2", (time(10), time(14)), None),
        ("2-4pm", (time(14), time(16)), None),
        ("11-1pm", (time(11), time(13)), None),
        ("from 9 to 11", (time(9), time(11)), None),
        ("any time after 4pm but before 6", (time(16), time(18)), None),
        ("Thursday afternoon after 3", (time(15), time(17)), None),
        ("after lunch", (time(13), time(17)), None),
        ("at 3", None, time(15)),
        ("at 8", None, time(8)),
        ("at 12", None, time(12)),
        ("3pm", None, time(15)),
        ("3 p.m.", None, time(15)),
        ("3:30", None, time(15, 30)),
        ("15:00", None, time(15)),
        ("07:30", None, time(7, 30)),
        ("noon", None, time(12)),
        ("10 am", None, time(10)),
        ("half past 2", None, time(14, 30)),
        ("quarter to 4", None, time(15, 45)),
        ("quarter past 9", None, time(9, 15)),
        ("three thirty", None, time(15, 30)),
        ("around 4ish", None, time(16)),
        ("tonight at 8", None, time(20)),
        ("7 in the morning", None, time(7)),
        ("tomorrow morning at 7", None, time(7)),
        ("Thursday afternoon at 3", None, time(15)),
        ("3 or 4pm", None, time(15)),
        ("3pm, actually 4pm", None, time(16)),
        ("the 3pm one", None, time(15)),
        ("yes book it for 3", None, time(15)),
    ],
)
def test_times(text: str, window: tuple[time, time] | None, exact: time | None) -> None:
    u = read(text)
    assert (u.time_window, u.exact_time) == (window, exact)


@pytest.mark.parametrize(
    "text", ["a table for 2", "is 2 ok?", "in 2 days", "$120", "2 to 4 people", "555-0142"]
)
def test_numbers_that_are_not_times(text: str) -> None:
    u = read(text)
    assert u.exact_time is None
    assert u.time_window is None


# ---------------------------------------------------------------------------
# Services and staff


@pytest.mark.parametrize(
    ("text", "service", "candidates"),
    [
        ("how much is whitening?", "Whitening", ("Whitening",)),
        ("teeth cleaning", "Cleaning", ("Cleaning", "Deep Cleaning")),
        ("a deep cleaning please", "Deep Cleaning", ("Deep Cleaning", "Cleaning")),
        ("deep clean", "Deep Cleaning", ("Deep Cleaning", "Cleaning")),
        ("check up", "Checkup", ("Checkup",)),
        ("check-up", "Checkup", ("Checkup",)),
        ("a dental exam", "Checkup", ("Checkup",)),
        ("CLEANING", "Cleaning", ("Cleaning", "Deep Cleaning")),
        ("fillings", "Filling", ("Filling",)),
        ("root canals", "Root Canal", ("Root Canal",)),
        ("whitning", "Whitening", ("Whitening",)),
        ("clening on friday", "Cleaning", ("Cleaning", "Deep Cleaning")),
        ("I'd like to get my teeth whitened", "Whitening", ("Whitening",)),
        ("cleaning and whitening", None, ("Cleaning", "Whitening")),
        ("I'm feeling unwell", None, ()),
    ],
)
def test_services(text: str, service: str | None, candidates: tuple[str, ...]) -> None:
    u = read(text)
    assert (u.service, u.service_candidates) == (service, candidates)


def test_a_word_shared_by_several_services_is_ambiguous() -> None:
    u = read("a haircut", services=("Men's Haircut", "Women's Haircut", "Beard Trim"))
    assert u.service is None
    assert u.service_candidates == ("Men's Haircut", "Women's Haircut")
    u = read("a women's haircut", services=("Men's Haircut", "Women's Haircut"))
    assert u.service == "Women's Haircut"


def test_a_generic_word_alone_does_not_pick_a_service() -> None:
    u = read("I need a new appointment", services=("New Patient Exam", "Cleaning"))
    assert u.service is None
    assert u.service_candidates == ()


@pytest.mark.parametrize(
    ("text", "staff"),
    [
        ("with Dr. Lee", "Dr. Lee"),
        ("Dr Patel please", "Dr. Patel"),
        ("can I see doctor patel", "Dr. Patel"),
        ("Sam", "Sam"),
        ("with Dr. Kim", None),
    ],
)
def test_staff(text: str, staff: str | None) -> None:
    assert read(text).staff == staff


def test_duplicate_service_names_do_not_make_a_tie() -> None:
    assert read("whitening", services=("Whitening", "Whitening")).service == "Whitening"


def test_the_staff_member_named_exactly_wins() -> None:
    team = ("Sam", "Sam Jones")
    assert read("Sam", staff=team).staff == "Sam"
    assert read("Sam Jones", staff=team).staff == "Sam Jones"
    assert read("with Jones", staff=team).staff == "Sam Jones"


def test_staff_names_that_are_ordinary_words_need_a_cue() -> None:
    team = ("May", "Will Turner")
    assert read("May 3", staff=team).staff is None
    assert read("will you call me", staff=team).staff is None
    assert read("with May", staff=team).staff == "May"
    assert read("can Will Turner do it", staff=team).staff == "Will Turner"


# ---------------------------------------------------------------------------
# Names, contact details, references


@pytest.mark.parametrize(
    ("text", "expecting", "name"),
    [
        ("my name is Jane Doe", None, "Jane Doe"),
        ("My name is john smith and I need a cleaning", None, "John Smith"),
        ("my name is Will", None, "Will"),
        ("I'm Jane", None, "Jane"),
        ("this is Jane Doe calling", None, "Jane Doe"),
        ("name: Jane Doe", None, "Jane Doe"),
        ("My name's Mary-Jane O'Neil.", None, "Mary-Jane O'Neil"),
        ("I'm looking for a cleaning", None, None),
        ("I'm not sure", None, None),
        ("This is great", None, None),
        ("Jane Doe", "name", "Jane Doe"),
        ("jane doe", "name", "Jane Doe"),
        ("JOSÉ NÚÑEZ", "name", "José Núñez"),
        ("it's Jane", "name", "Jane"),
        ("Sure, it's Jane Doe", "name", "Jane Doe"),
        ("Jane Doe", None, None),
        ("Thursday", "name", None),
        ("yes please", "name", None),
        ("Cleaning", "name", None),
    ],
)
def test_names(text: str, expecting: Expecting | None, name: str | None) -> None:
    assert read(text, expecting=expecting).name == name


def test_the_customers_name_is_not_taken_for_a_staff_member() -> None:
    u = read("I'm Sam, I'd like a cleaning")
    assert u.name == "Sam"
    assert u.staff is None


@pytest.mark.parametrize(
    ("text", "expecting", "phone"),
    [
        ("212-555-0142", None, "+12125550142"),
        ("call me on (212) 555 0142", None, "+12125550142"),
        ("my number is 2125550142", None, "+12125550142"),
        ("+44 20 7946 0958", None, "+442079460958"),
        ("two one two five five five zero one four two", "phone", "+12125550142"),
        ("555-0142", "phone", None),
        ("two one two five five five zero one four two", None, None),
    ],
)
def test_phones(text: str, expecting: Expecting | None, phone: str | None) -> None:
    assert read(text, expecting=expecting).phone == phone


def test_phone_region_follows_the_business() -> None:
    assert read("020 7946 0958", region="GB").phone == "+442079460958"


@pytest.mark.parametrize(
    ("text", "expecting", "email"),
    [
        ("jane@example.com", None, "jane@example.com"),
        ("my email is Jane.Doe@Example.COM thanks", None, "Jane.Doe@example.com"),
        ("jane dot doe at example dot com", "email", "jane.doe@example.com"),
        ("jane at example dot com", None, None),
    ],
)
def test_emails(text: str, expecting: Expecting | None, email: str | None) -> None:
    assert read(text, expecting=expecting).email == email


@pytest.mark.parametrize(
    ("text", "expecting", "reference"),
    [
        ("K7Q-4MZ", None, "K7Q-4MZ"),
        ("cancel K7Q-4MZ please", None, "K7Q-4MZ"),
        ("my reference is k7q4mz", None, "K7Q-4MZ"),
        ("k7q4mz", "reference", "K7Q-4MZ"),
        ("k7q-4mz", "reference", "K7Q-4MZ"),
        ("k7q 4mz", "reference", "K7Q-4MZ"),
        ("k7q4mz", None, None),
        ("K7Q-4MO", None, None),  # O is not in the alphabet
        ("K1Q-4MZ", "reference", None),  # nor is 1
        ("thanks", "reference", None),
        ("TUE-THU", None, None),
    ],
)
def test_references(text: str, expecting: Expecting | None, reference: str | None) -> None:
    assert read(text, expecting=expecting).reference == reference


# ---------------------------------------------------------------------------
# Choosing from a list


@pytest.mark.parametrize(
    ("text", "expecting", "choice"),
    [
        ("the first one", None, 1),
        ("option 2", None, 2),
        ("#3", None, 3),
        ("I'll take the 2nd one", None, 2),
        ("the second", None, 2),
        ("the last one", None, -1),
        ("2", "slot_choice", 2),
        ("2", None, None),
        ("the second", "slot_choice", 2),
        ("the 3rd", "slot_choice", 3),
        ("one please", "slot_choice", 1),
        ("3", "service", 3),
        ("the 3pm one", "slot_choice", None),
    ],
)
def test_choices(text: str, expecting: Expecting | None, choice: int | None) -> None:
    assert read(text, expecting=expecting).choice == choice


def test_an_ordinal_is_a_date_unless_a_list_was_offered() -> None:
    assert read("the 3rd").dates == day(12, 3)
    assert read("the 3rd", expecting="slot_choice").dates is None
    assert read("on the 3rd", expecting="slot_choice").dates == day(12, 3)
    assert read("15", expecting="date").dates == day(12, 15)


# ---------------------------------------------------------------------------
# Whole messages


def test_a_mixed_sentence_is_read_in_full() -> None:
    u = read(
        "Hi, I'm Jane Doe, 212-555-0142, I'd like a checkup with Dr. Patel next Tuesday at 10am"
    )
    assert u == Utterance(
        intents=frozenset({Intent.GREETING, Intent.BOOK}),
        service="Checkup",
        service_candidates=("Checkup",),
        staff="Dr. Patel",
        staff_candidates=("Dr. Patel",),
        dates=day(12, 1),
        exact_time=time(10),
        name="Jane Doe",
        phone="+12125550142",
    )


def test_a_booking_request_with_everything() -> None:
    u = read("I'd like to book a cleaning for next Friday at 9:30am with Sam")
    assert u.intents == {Intent.BOOK}
    assert (u.service, u.staff, u.dates, u.exact_time) == (
        "Cleaning",
        "Sam",
        day(12, 4),
        time(9, 30),
    )


def test_a_reschedule_with_a_new_time() -> None:
    u = read("move my booking to Monday morning")
    assert u.intents == {Intent.RESCHEDULE}
    assert (u.dates, u.time_window) == (day(11, 30), (time(8), time(12)))


@pytest.mark.parametrize(
    ("text", "dates", "exact"),
    [
        ("I need to move my appointment from Thursday to Friday", day(11, 27), None),
        ("move my 3pm to 4pm", None, time(16)),
        ("can I change my appointment on the 5th to the 7th", day(12, 7), None),
        ("reschedule my Thursday 3pm to Friday at 4", day(11, 27), time(16)),
    ],
)
def test_a_reschedule_reads_only_the_new_values(
    text: str, dates: DateSpec | None, exact: time | None
) -> None:
    u = read(text)
    assert u.intents == {Intent.RESCHEDULE}
    assert (u.dates, u.exact_time) == (dates, exact)


def test_the_appointment_being_moved_keeps_its_staff() -> None:
    u = read("change my appointment with Dr. Lee to Friday")
    assert (u.staff, u.dates) == ("Dr. Lee", day(11, 27))


def test_wanting_to_change_something_is_not_a_new_booking() -> None:
    assert read("I want to change it to 4pm").intents == {Intent.CORRECTION}
    assert read("I want to come in tomorrow").intents == {Intent.BOOK}


def test_rejecting_one_offer_and_picking_another() -> None:
    u = read("not that one, the second")
    assert u.intents == {Intent.NO}
    assert u.choice == 2


@pytest.mark.parametrize(
    ("text", "dates"),
    [("Sat 10am", day(11, 28)), ("can i come sat", day(11, 28)), ("on sun", day(11, 29))],
)
def test_short_weekdays_that_are_also_words(text: str, dates: DateSpec) -> None:
    assert read(text).dates == dates


def test_an_open_availability_question() -> None:
    u = read("anything next week after 5?")
    assert u.intents == {Intent.AVAILABILITY}
    assert u.dates == days((11, 30), (12, 6))
    assert u.time_window == (time(17), time(21))
    assert u.exact_time is None


def test_earliest_is_flagged() -> None:
    assert read("what's the earliest you have?").earliest
    assert read("can I come in asap").earliest
    assert not read("tomorrow at 3").earliest


@pytest.mark.parametrize(
    "text",
    [
        "asdf qwerty",
        "",
        "   ",
        "???",
        "😀😀",
        "你好\uff0c我想预约",
        "SELECT * FROM users; DROP TABLE x;--",
    ],
)
def test_gibberish(text: str) -> None:
    u = read(text)
    assert u.gibberish
    assert u.intents == frozenset()


def test_a_meaningful_message_is_not_gibberish() -> None:
    assert not read("tomorrow").gibberish
    assert not read("K7Q-4MZ").gibberish


@pytest.mark.parametrize(
    "text",
    [
        "'; DROP TABLE appointments; --",
        "Robert'); DELETE FROM booking_appointment WHERE 1=1;--",
        "<script>alert(1)</script> book tomorrow",
        "\x00\x01\x02 tomorrow \u200b\u200d",
        "İstanbul ﬁle ẞ Ǆ ﷺ",
        "٣ pm tomorrow",
        "a" * 5000,
        "9" * 400,
        "at " * 300,
        "Monday to " * 100,
    ],
)
def test_hostile_input_never_crashes(text: str) -> None:
    assert isinstance(read(text), Utterance)


def test_sql_in_a_booking_message_is_just_text() -> None:
    u = read("cleaning tomorrow'; DROP TABLE x;--")
    assert (u.service, u.dates) == ("Cleaning", day(11, 25))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(max_size=500),
    expecting=st.sampled_from(
        [None, "name", "phone", "email", "reference", "slot_choice", "service", "date"]
    ),
)
def test_parse_never_raises(text: str, expecting: Expecting | None) -> None:
    u = read(text, expecting=expecting)
    assert u.gibberish == (
        not u.intents
        and not u.earliest
        and not u.service_candidates
        and not u.staff_candidates
        and all(
            v is None
            for v in (
                u.dates,
                u.time_window,
                u.exact_time,
                u.name,
                u.phone,
                u.email,
                u.reference,
                u.choice,
            )
        )
    )
    if u.dates is not None:
        assert u.dates.start <= u.dates.end
    if u.time_window is not None:
        assert u.time_window[0] < u.time_window[1]


# ---------------------------------------------------------------------------
# Time zones and the clock


def test_relative_dates_use_now_in_the_business_zone() -> None:
    # 04:30 UTC on Saturday is still Friday evening in New York.
    now = datetime(2026, 3, 7, 4, 30, tzinfo=UTC)
    assert read("today", now=now).dates == day(3, 6)
    assert read("tomorrow", now=now).dates == day(3, 7)
    assert read("next week", now=now).dates == days((3, 9), (3, 15))


def test_the_spring_forward_sunday_in_new_york() -> None:
    # Clocks go 02:00 -> 03:00 on Sunday 2026-03-08; times stay local wall times
    # and the booking engine decides what a missing hour means.
    now = datetime(2026, 3, 6, 9, 0, tzinfo=NY)
    u = read("Sunday at 2:30am", now=now)
    assert (u.dates, u.exact_time) == (day(3, 8), time(2, 30))
    assert read("in 2 days", now=now).dates == day(3, 8)
    assert read("this weekend", now=now).dates == days((3, 7), (3, 8))


def test_the_spring_forward_weekend_in_london() -> None:
    friday_night = datetime(2026, 3, 27, 23, 30, tzinfo=UTC)  # 23:30 GMT, Friday
    assert read("tomorrow", now=friday_night, tz=LONDON, region="GB").dates == day(3, 28)
    assert read("Sunday", now=friday_night, tz=LONDON, region="GB").dates == day(3, 29)
    # 23:30 UTC on Sunday is already 00:30 BST on Monday.
    after_change = datetime(2026, 3, 29, 23, 30, tzinfo=UTC)
    assert read("today", now=after_change, tz=LONDON, region="GB").dates == day(3, 30)
    assert read("next week", now=after_change, tz=LONDON, region="GB").dates == days(
        (4, 6), (4, 12)
    )


def test_the_wall_clock_is_never_read() -> None:
    with time_machine.travel(datetime(2031, 7, 1, 12, 0, tzinfo=UTC), tick=False):
        assert read("tomorrow").dates == day(11, 25)
        assert read("December 3").dates == day(12, 3)


def test_a_now_at_the_edge_of_the_calendar_does_not_crash() -> None:
    edge = datetime(9999, 12, 30, 12, tzinfo=UTC)
    assert read("in 99 months", now=edge, tz=ZoneInfo("UTC")).dates is None


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse("tomorrow", now=datetime(2026, 11, 24, 10), tz=NY, service_names=SERVICES)


def test_an_unknown_expectation_is_refused() -> None:
    with pytest.raises(ValueError, match="expecting"):
        read("hi", expecting="colour")  # type: ignore[arg-type]


def test_datespec() -> None:
    spec = days((11, 30), (12, 2))
    assert list(spec.days()) == [date(2026, 11, 30), date(2026, 12, 1), date(2026, 12, 2)]
    assert date(2026, 12, 1) in spec
    assert date(2026, 12, 3) not in spec
    assert datetime(2026, 12, 1, 9, tzinfo=NY) not in spec
    assert not spec.is_single_day
    assert day(12, 1).is_single_day
    with pytest.raises(ValueError, match="before"):
        DateSpec(date(2026, 12, 2), date(2026, 12, 1))


def test_the_parser_does_not_import_django() -> None:
    code = (
        "import sys, agent.language; print(any(m.split('.')[0] == 'django' for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"
