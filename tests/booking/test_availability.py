from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from booking.availability import (
    PARTS_OF_DAY,
    Busy,
    Closure,
    Policy,
    ServiceSpec,
    Slot,
    SlotCheck,
    StaffSpec,
    Unavailable,
    check_slot,
    find_slots,
)

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
MONDAY = date(2026, 6, 1)
EVERY_DAY_9_TO_5 = {weekday: [(time(9), time(17))] for weekday in range(7)}
CUT = ServiceSpec(id=1, duration_minutes=60)
ALICE = StaffSpec(id=1, service_ids=frozenset({1}), weekly_hours=EVERY_DAY_9_TO_5)
BOB = StaffSpec(id=2, service_ids=frozenset({1}), weekly_hours=EVERY_DAY_9_TO_5)


def at(tz: ZoneInfo, day: date, hour: int, minute: int = 0) -> datetime:
    """A local wall time (its first occurrence) as an aware UTC instant."""
    return datetime.combine(day, time(hour, minute), tzinfo=tz).astimezone(UTC)


def early(tz: ZoneInfo, day: date) -> datetime:
    """A `now` well before `day`, so notice never interferes."""
    return at(tz, day - timedelta(days=3), 8)


def search(**overrides: Any) -> list[Slot]:
    tz = overrides.get("tz", NY)
    day = overrides.get("start_date", MONDAY)
    args: dict[str, Any] = {
        "tz": tz,
        "policy": Policy(),
        "service": CUT,
        "staff": [ALICE],
        "closures": [],
        "busy": [],
        "now": early(tz, day),
        "start_date": day,
        "end_date": day,
    }
    args.update(overrides)
    return find_slots(**args)


def check(start: datetime, staff_id: int | None = 1, **overrides: Any) -> SlotCheck:
    tz = overrides.get("tz", NY)
    args: dict[str, Any] = {
        "tz": tz,
        "policy": Policy(),
        "service": CUT,
        "staff": [ALICE],
        "closures": [],
        "busy": [],
        "now": early(tz, start.astimezone(tz).date()),
    }
    args.update(overrides)
    return check_slot(start=start, staff_id=staff_id, **args)


def hhmm(slots: list[Slot], tz: ZoneInfo = NY) -> list[str]:
    return [s.start.astimezone(tz).strftime("%H:%M") for s in slots]


# Working hours and breaks


def test_slots_step_through_working_hours_and_end_by_closing_time() -> None:
    slots = search()

    assert hhmm(slots)[:3] == ["09:00", "09:15", "09:30"]
    assert hhmm(slots)[-1] == "16:00"
    assert len(slots) == 29
    assert all(s.end - s.start == timedelta(hours=1) and s.staff_id == 1 for s in slots)


def test_day_off_has_no_slots() -> None:
    weekdays_only = StaffSpec(1, frozenset({1}), {d: [(time(9), time(17))] for d in range(5)})

    assert (
        search(staff=[weekdays_only], start_date=date(2026, 6, 6), end_date=date(2026, 6, 7)) == []
    )


def test_break_is_not_offered_and_each_interval_has_its_own_grid() -> None:
    split = StaffSpec(1, frozenset({1}), {0: [(time(13, 10), time(15)), (time(9), time(12))]})

    morning = [f"{9 + q // 4:02}:{q % 4 * 15:02}" for q in range(9)]
    assert hhmm(search(staff=[split])) == [*morning, "13:10", "13:25", "13:40", "13:55"]


def test_staff_hours_reject_overlapping_intervals() -> None:
    with pytest.raises(ValueError, match="overlapping"):
        StaffSpec(1, frozenset({1}), {0: [(time(9), time(12)), (time(11), time(14))]})


def test_staff_hours_reject_interval_crossing_midnight() -> None:
    with pytest.raises(ValueError, match="crosses midnight"):
        StaffSpec(1, frozenset({1}), {0: [(time(22), time(2))]})


# Closures


def test_business_closure_removes_overlapping_slots_for_everyone() -> None:
    lunch = Closure(at(NY, MONDAY, 12), at(NY, MONDAY, 14))

    slots = search(staff=[ALICE, BOB], closures=[lunch], any_staff=False)

    for staff_id in (1, 2):
        starts = hhmm([s for s in slots if s.staff_id == staff_id])
        assert "11:00" in starts  # ends exactly when the closure begins
        assert "11:15" not in starts
        assert "13:45" not in starts
        assert "14:00" in starts  # starts exactly when it ends


def test_staff_closure_only_affects_that_staff_member() -> None:
    dentist_away = Closure(at(NY, MONDAY, 9), at(NY, MONDAY, 13), staff_id=1)

    slots = search(staff=[ALICE, BOB], closures=[dentist_away], any_staff=False)

    assert hhmm([s for s in slots if s.staff_id == 1])[0] == "13:00"
    assert hhmm([s for s in slots if s.staff_id == 2])[0] == "09:00"


def test_closure_must_be_aware_and_nonempty() -> None:
    with pytest.raises(ValueError, match="aware"):
        Closure(datetime(2026, 6, 1, 9), datetime(2026, 6, 1, 10))
    with pytest.raises(ValueError, match="after start"):
        Closure(at(NY, MONDAY, 10), at(NY, MONDAY, 10))


# Busy time and buffers


def test_buffers_keep_the_service_away_from_existing_appointments() -> None:
    with_buffers = ServiceSpec(
        1, duration_minutes=30, buffer_before_minutes=15, buffer_after_minutes=15
    )
    appointment = Busy(1, at(NY, MONDAY, 10), at(NY, MONDAY, 11))

    starts = hhmm(search(service=with_buffers, busy=[appointment]))

    assert "09:15" in starts  # 09:00-10:00 buffered, touching the appointment
    assert "09:30" not in starts
    assert "11:00" not in starts
    assert "11:15" in starts  # 11:00-12:00 buffered


def test_gap_that_exactly_fits_the_buffered_service_is_offered() -> None:
    with_buffers = ServiceSpec(
        1, duration_minutes=30, buffer_before_minutes=15, buffer_after_minutes=15
    )
    around = [
        Busy(1, at(NY, MONDAY, 9), at(NY, MONDAY, 10)),
        Busy(1, at(NY, MONDAY, 11), at(NY, MONDAY, 12)),
    ]

    starts = hhmm(search(service=with_buffers, busy=around))

    assert [t for t in starts if t < "12:00"] == ["10:15"]
    assert check(at(NY, MONDAY, 10, 15), service=with_buffers, busy=around).ok


def test_slot_squeezed_between_a_closure_and_an_appointment_is_offered() -> None:
    meeting = Closure(at(NY, MONDAY, 9), at(NY, MONDAY, 10))
    appointment = Busy(1, at(NY, MONDAY, 11), at(NY, MONDAY, 12))

    starts = hhmm(search(closures=[meeting], busy=[appointment]))

    assert [t for t in starts if t < "12:00"] == ["10:00"]


def test_buffer_reaching_past_midnight_respects_the_next_days_appointments() -> None:
    late = StaffSpec(1, frozenset({1}), {0: [(time(22), time(23, 45))]})
    with_cleanup = ServiceSpec(1, duration_minutes=45, buffer_after_minutes=30)
    tuesday = MONDAY + timedelta(days=1)
    early_tuesday = Busy(1, at(NY, tuesday, 0), at(NY, tuesday, 1))

    starts = hhmm(search(staff=[late], service=with_cleanup, busy=[early_tuesday]))

    assert starts == ["22:00", "22:15", "22:30", "22:45"]


def test_buffers_may_reach_outside_working_hours() -> None:
    with_buffers = ServiceSpec(
        1, duration_minutes=60, buffer_before_minutes=30, buffer_after_minutes=30
    )

    starts = hhmm(search(service=with_buffers))

    assert starts[0] == "09:00"
    assert starts[-1] == "16:00"


def test_busy_time_of_another_staff_member_does_not_block() -> None:
    bobs_appointment = Busy(2, at(NY, MONDAY, 9), at(NY, MONDAY, 17))

    assert len(search(busy=[bobs_appointment])) == 29


# Notice, horizon, window


def test_min_notice_rounds_up_to_the_next_grid_point() -> None:
    now = at(NY, MONDAY, 9, 20)

    assert hhmm(search(now=now))[0] == "10:30"


def test_start_exactly_at_the_notice_limit_is_offered() -> None:
    now = at(NY, MONDAY, 9)

    assert hhmm(search(now=now))[0] == "10:00"
    assert check(at(NY, MONDAY, 10), now=now).ok
    assert check(at(NY, MONDAY, 9, 45), now=now).reason is Unavailable.TOO_SOON


def test_booking_horizon_is_counted_in_local_days() -> None:
    # 23:30 Sunday in New York is already Monday in UTC: the horizon counts from Sunday.
    now = at(NY, MONDAY - timedelta(days=1), 23, 30)

    slots = search(now=now, policy=Policy(max_days_ahead=2), end_date=MONDAY + timedelta(days=5))

    days = sorted({s.start.astimezone(NY).date() for s in slots})
    assert days == [MONDAY, MONDAY + timedelta(days=1)]


def test_window_keeps_starts_inside_the_part_of_day() -> None:
    long_day = StaffSpec(1, frozenset({1}), {0: [(time(8), time(20))]})

    afternoon = hhmm(search(staff=[long_day], window=PARTS_OF_DAY["afternoon"]))

    assert afternoon[0] == "12:00"
    assert afternoon[-1] == "16:45"  # a 16:45 start runs past 17:00, which is allowed


def test_window_end_is_exclusive() -> None:
    assert hhmm(search(window=(time(12), time(13)))) == ["12:00", "12:15", "12:30", "12:45"]


def test_window_must_not_be_empty() -> None:
    with pytest.raises(ValueError, match="window"):
        search(window=(time(13), time(12)))


def test_date_range_is_inclusive_and_local() -> None:
    slots = search(start_date=MONDAY, end_date=MONDAY + timedelta(days=2))

    assert sorted({s.start.astimezone(NY).date() for s in slots}) == [
        MONDAY,
        MONDAY + timedelta(days=1),
        MONDAY + timedelta(days=2),
    ]


# Staff filter and pooling


def test_staff_filter_returns_only_that_staff_member() -> None:
    slots = search(staff=[ALICE, BOB], staff_id=2)

    assert {s.staff_id for s in slots} == {2}
    assert len(slots) == 29


def test_staff_not_offering_the_service_is_never_offered() -> None:
    colourist = StaffSpec(3, frozenset({2}), EVERY_DAY_9_TO_5)

    assert search(staff=[colourist]) == []
    assert search(staff=[ALICE, colourist], staff_id=3) == []
    assert {s.staff_id for s in search(staff=[ALICE, colourist], any_staff=False)} == {1}


def test_without_pooling_every_pair_is_listed_in_start_then_staff_order() -> None:
    slots = search(staff=[BOB, ALICE], any_staff=False)

    assert len(slots) == 58
    assert [(s.start, s.staff_id) for s in slots] == sorted((s.start, s.staff_id) for s in slots)
    assert [s.staff_id for s in slots[:2]] == [1, 2]


def test_pooling_offers_each_start_once_to_the_least_busy_staff_member() -> None:
    alices_morning = Busy(1, at(NY, MONDAY, 9), at(NY, MONDAY, 10))

    slots = search(staff=[ALICE, BOB], busy=[alices_morning])

    assert len({s.start for s in slots}) == len(slots) == 29
    assert {s.staff_id for s in slots} == {2}


def test_pooling_breaks_ties_by_lowest_id() -> None:
    slots = search(staff=[BOB, ALICE])

    assert {s.staff_id for s in slots} == {1}


def test_pooling_falls_back_to_whoever_is_free() -> None:
    bobs_noon = Busy(2, at(NY, MONDAY, 12), at(NY, MONDAY, 13))
    alices_long_morning = Busy(1, at(NY, MONDAY, 9), at(NY, MONDAY, 11))

    by_start = {
        s.start.astimezone(NY).strftime("%H:%M"): s.staff_id
        for s in search(staff=[ALICE, BOB], busy=[bobs_noon, alices_long_morning])
    }

    assert by_start["09:00"] == 2  # Alice is busy
    assert by_start["12:00"] == 1  # Bob is busy
    assert by_start["14:00"] == 2  # both free: Bob has fewer busy minutes today


def test_pooling_counts_only_the_local_day_of_the_slot() -> None:
    bobs_tuesday = Busy(
        2, at(NY, MONDAY + timedelta(days=1), 9), at(NY, MONDAY + timedelta(days=1), 17)
    )
    alices_monday = Busy(1, at(NY, MONDAY, 16), at(NY, MONDAY, 17))

    slots = search(staff=[ALICE, BOB], busy=[bobs_tuesday, alices_monday])

    assert {s.staff_id for s in slots} == {2}


# The single-slot check


def test_check_accepts_an_offered_slot_and_returns_it() -> None:
    result = check(at(NY, MONDAY, 10))

    assert result.ok
    assert result.reason is None
    assert result.slot == Slot(at(NY, MONDAY, 10), at(NY, MONDAY, 11), 1)


@pytest.mark.parametrize(
    ("start", "overrides", "reason"),
    [
        (at(NY, MONDAY, 10), {"service": ServiceSpec(9, 60)}, Unavailable.NOT_OFFERED),
        (at(NY, MONDAY, 10), {"now": at(NY, MONDAY, 9, 30)}, Unavailable.TOO_SOON),
        (
            at(NY, MONDAY, 10),
            {"now": at(NY, MONDAY - timedelta(days=61), 9)},
            Unavailable.TOO_FAR_AHEAD,
        ),
        (at(NY, MONDAY, 8, 45), {}, Unavailable.OUTSIDE_HOURS),
        (at(NY, MONDAY, 16, 15), {}, Unavailable.OUTSIDE_HOURS),
        (at(NY, MONDAY, 10, 7), {}, Unavailable.OFF_GRID),
        (
            at(NY, MONDAY, 10),
            {"closures": [Closure(at(NY, MONDAY, 10, 30), at(NY, MONDAY, 11))]},
            Unavailable.CLOSED,
        ),
        (
            at(NY, MONDAY, 10),
            {"busy": [Busy(1, at(NY, MONDAY, 10, 59), at(NY, MONDAY, 12))]},
            Unavailable.TAKEN,
        ),
    ],
)
def test_check_explains_why_a_slot_cannot_be_booked(
    start: datetime, overrides: dict[str, Any], reason: Unavailable
) -> None:
    result = check(start, **overrides)

    assert not result.ok
    assert result.slot is None
    assert result.reason is reason


def test_check_accepts_starts_that_only_touch_busy_time_and_closures() -> None:
    with_buffers = ServiceSpec(
        1, duration_minutes=60, buffer_before_minutes=10, buffer_after_minutes=5
    )
    busy_before = Busy(1, at(NY, MONDAY, 9), at(NY, MONDAY, 9, 50))
    closed_after = Closure(at(NY, MONDAY, 11), at(NY, MONDAY, 12))

    result = check(
        at(NY, MONDAY, 10), service=with_buffers, busy=[busy_before], closures=[closed_after]
    )

    assert result.ok


def test_check_of_unknown_staff_member_is_not_offered() -> None:
    assert check(at(NY, MONDAY, 10), staff_id=99).reason is Unavailable.NOT_OFFERED


def test_check_for_any_staff_picks_the_staff_member_find_slots_offers() -> None:
    alices_morning = Busy(1, at(NY, MONDAY, 9), at(NY, MONDAY, 10))
    offered = search(staff=[ALICE, BOB], busy=[alices_morning])[-1]

    result = check(offered.start, staff_id=None, staff=[ALICE, BOB], busy=[alices_morning])

    assert result.slot == offered


def test_check_for_any_staff_reports_the_most_specific_reason() -> None:
    both_busy = [Busy(i, at(NY, MONDAY, 10), at(NY, MONDAY, 11)) for i in (1, 2)]
    colourist = StaffSpec(3, frozenset({2}), EVERY_DAY_9_TO_5)

    result = check(at(NY, MONDAY, 10), staff_id=None, staff=[colourist, ALICE, BOB], busy=both_busy)

    assert result.reason is Unavailable.TAKEN


# Daylight saving time

DST_DAYS = [
    pytest.param(NY, date(2026, 3, 8), id="new-york-spring"),
    pytest.param(NY, date(2026, 11, 1), id="new-york-fall"),
    pytest.param(LONDON, date(2026, 3, 29), id="london-spring"),
    pytest.param(LONDON, date(2026, 10, 25), id="london-fall"),
]


def exists_on_the_wall(instant: datetime, tz: ZoneInfo) -> bool:
    """Whether the local reading of `instant` maps back to it (so it is a real wall time)."""
    wall = instant.astimezone(tz)
    naive = wall.replace(tzinfo=None)
    return any(naive.replace(tzinfo=tz, fold=f).astimezone(UTC) == instant for f in (0, 1))


@pytest.mark.parametrize(("tz", "dst_day"), DST_DAYS)
@pytest.mark.parametrize("shift", [-1, 0, 1], ids=["day-before", "dst-day", "day-after"])
def test_nine_to_five_starts_at_nine_around_dst(tz: ZoneInfo, dst_day: date, shift: int) -> None:
    day = dst_day + timedelta(days=shift)

    slots = search(tz=tz, start_date=day, end_date=day)

    assert [s.start.astimezone(tz).time() for s in slots][:2] == [time(9), time(9, 15)]
    assert slots[-1].start.astimezone(tz).time() == time(16)
    assert len(slots) == 29


@pytest.mark.parametrize(("tz", "dst_day"), DST_DAYS)
def test_night_hours_across_a_transition_have_their_real_length(
    tz: ZoneInfo, dst_day: date
) -> None:
    night = StaffSpec(1, frozenset({1}), {6: [(time(0), time(6))]})

    slots = search(tz=tz, staff=[night], start_date=dst_day, end_date=dst_day)

    real_hours = (at(tz, dst_day, 6) - at(tz, dst_day, 0)) / timedelta(hours=1)
    assert real_hours == (5 if dst_day.month < 6 else 7)
    assert len(slots) == (real_hours - 1) * 4 + 1
    assert all(exists_on_the_wall(s.start, tz) for s in slots)
    assert len({s.start for s in slots}) == len(slots)
    assert all(s.end.timestamp() - s.start.timestamp() == 3600 for s in slots)
    assert all(b.start.timestamp() - a.start.timestamp() == 900 for a, b in pairwise(slots))


@pytest.mark.parametrize(
    ("tz", "dst_day", "opens", "first"),
    [
        pytest.param(NY, date(2026, 3, 8), time(2, 30), "03:00", id="new-york"),
        pytest.param(LONDON, date(2026, 3, 29), time(1, 30), "02:00", id="london"),
    ],
)
def test_hours_opening_inside_the_spring_gap_begin_when_the_gap_ends(
    tz: ZoneInfo, dst_day: date, opens: time, first: str
) -> None:
    staff = StaffSpec(1, frozenset({1}), {6: [(opens, time(6))]})

    slots = search(tz=tz, staff=[staff], start_date=dst_day, end_date=dst_day)

    assert hhmm(slots, tz)[0] == first
    assert slots[0].start.astimezone(tz).utcoffset() == timedelta(hours=-4 if tz is NY else 1)


@pytest.mark.parametrize(
    ("tz", "dst_day", "opens", "summer"),
    [
        pytest.param(NY, date(2026, 11, 1), time(1, 30), timedelta(hours=-4), id="new-york"),
        pytest.param(LONDON, date(2026, 10, 25), time(1, 30), timedelta(hours=1), id="london"),
    ],
)
def test_hours_opening_in_the_repeated_hour_use_its_first_occurrence(
    tz: ZoneInfo, dst_day: date, opens: time, summer: timedelta
) -> None:
    staff = StaffSpec(1, frozenset({1}), {6: [(opens, time(6))]})

    slots = search(tz=tz, staff=[staff], start_date=dst_day, end_date=dst_day)

    first = slots[0].start.astimezone(tz)
    assert (first.time(), first.utcoffset()) == (time(1, 30), summer)


def test_day_whose_midnight_does_not_exist_still_opens_at_nine() -> None:
    santiago = ZoneInfo("America/Santiago")  # 2026-09-06 00:00-00:59 is skipped
    day = date(2026, 9, 6)

    slots = search(tz=santiago, start_date=day, end_date=day)

    assert hhmm(slots, santiago)[0] == "09:00"
    assert len(slots) == 29


def test_clock_falling_back_across_midnight_keeps_each_slot_on_its_own_date() -> None:
    st_johns = ZoneInfo("America/St_Johns")  # 2010-11-07 00:01 became 23:01 on the 6th
    sunday = date(2010, 11, 7)
    night = StaffSpec(1, frozenset({1}), {6: [(time(0), time(2))]})
    quarter = ServiceSpec(1, duration_minutes=15)

    slots = search(tz=st_johns, staff=[night], service=quarter, start_date=sunday, end_date=sunday)

    assert {s.start.astimezone(st_johns).date() for s in slots} == {sunday}
    # The first 00:00 comes a minute before the clock goes back; the next 45
    # minutes read Saturday 23:xx again and belong to Saturday.
    expected = ["00:00", "00:00", "00:15", "00:30", "00:45", "01:00", "01:15", "01:30", "01:45"]
    assert hhmm(slots, st_johns) == expected


def test_window_on_fall_back_day_includes_both_readings_of_the_repeated_hour() -> None:
    night = StaffSpec(1, frozenset({1}), {6: [(time(0), time(6))]})
    day = date(2026, 11, 1)

    slots = search(staff=[night], start_date=day, end_date=day, window=(time(1), time(2)))

    assert hhmm(slots) == ["01:00", "01:15", "01:30", "01:45"] * 2
    assert len({s.start for s in slots}) == 8


# Properties against a brute-force reference

ZONES = [
    ZoneInfo(name)
    for name in (
        "UTC",
        "America/New_York",
        "Europe/London",
        "America/Santiago",  # changes at midnight: 00:00-01:00 is missing on 2026-09-06
        "Australia/Lord_Howe",  # half-hour DST
        "Asia/Kolkata",
        "America/St_Johns",  # until 2010 fell back from 00:01 to 23:01 the day before
    )
]
TRANSITION_DAYS = [
    date(2026, 3, 8),
    date(2026, 11, 1),
    date(2026, 3, 29),
    date(2026, 10, 25),
    date(2026, 4, 4),
    date(2026, 4, 5),
    date(2026, 9, 6),
    date(2026, 10, 4),
    date(2010, 11, 7),
]
INTERESTING_MINUTES = [0, 30, 60, 90, 105, 120, 150, 180, 540, 720, 780, 1020, 1380, 1410]


@dataclasses.dataclass(frozen=True)
class Scenario:
    tz: ZoneInfo
    policy: Policy
    service: ServiceSpec
    staff: list[StaffSpec]
    closures: list[Closure]
    busy: list[Busy]
    now: datetime
    start_date: date
    end_date: date
    window: tuple[time, time] | None
    anchor: datetime  # local midnight before start_date, in UTC

    def common(self) -> dict[str, Any]:
        return {
            "tz": self.tz,
            "policy": self.policy,
            "service": self.service,
            "staff": self.staff,
            "closures": self.closures,
            "busy": self.busy,
            "now": self.now,
        }

    def find(self, *, any_staff: bool) -> list[Slot]:
        return find_slots(
            **self.common(),
            start_date=self.start_date,
            end_date=self.end_date,
            window=self.window,
            any_staff=any_staff,
        )


def as_time(minute: int) -> time:
    return time(minute // 60, minute % 60)


MINUTE_OF_DAY = st.sampled_from(INTERESTING_MINUTES) | st.integers(0, 1439)


@st.composite
def weekly_hours(draw: st.DrawFn) -> dict[int, list[tuple[time, time]]]:
    hours: dict[int, list[tuple[time, time]]] = {}
    for weekday in range(7):
        n = 2 * draw(st.sampled_from([0, 1, 1, 2]))
        marks = sorted(draw(st.lists(MINUTE_OF_DAY, min_size=n, max_size=n, unique=True)))
        hours[weekday] = [
            (as_time(a), as_time(b)) for a, b in zip(marks[::2], marks[1::2], strict=True)
        ]
    return hours


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    tz = draw(st.sampled_from(ZONES))
    start_date = draw(
        st.sampled_from(TRANSITION_DAYS) | st.dates(date(2026, 1, 1), date(2026, 12, 31))
    )
    start_date += timedelta(days=draw(st.integers(-1, 0)))
    end_date = start_date + timedelta(days=draw(st.integers(0, 2)))
    anchor = datetime.combine(start_date - timedelta(days=1), time(), tzinfo=tz).astimezone(UTC)
    # Staff often share a timetable, so pooling has real choices to make.
    timetables = [draw(weekly_hours()) for _ in range(2)]
    staff = [
        StaffSpec(
            id=i,
            service_ids=frozenset(draw(st.sampled_from([{1}, {1}, {1, 2}, {2}]))),
            weekly_hours=draw(st.sampled_from(timetables)),
        )
        for i in range(1, draw(st.integers(1, 3)) + 1)
    ]
    staff_ids = st.sampled_from([s.id for s in staff])

    def span(max_minutes: int) -> tuple[datetime, datetime]:
        day = draw(st.integers(0, 4) | st.integers(1, 3))
        start = anchor + timedelta(days=day, minutes=draw(MINUTE_OF_DAY))
        # Round lengths make spans that exactly touch grid points and each other.
        length = st.sampled_from([15, 30, 45, 60, 90, 120]) | st.integers(1, max_minutes)
        return start, start + timedelta(minutes=draw(length))

    busy = [Busy(draw(staff_ids), *span(240)) for _ in range(draw(st.integers(0, 20)))]
    closures = [
        Closure(*span(600), staff_id=draw(st.none() | staff_ids))
        for _ in range(draw(st.integers(0, 3)))
    ]
    return Scenario(
        tz=tz,
        policy=Policy(
            slot_step_minutes=draw(st.sampled_from([5, 10, 15, 20, 30, 60])),
            min_notice_minutes=draw(st.sampled_from([0, 30, 60, 240])),
            max_days_ahead=draw(st.sampled_from([0, 1, 2, 60, 60, 60])),
        ),
        service=ServiceSpec(
            id=1,
            duration_minutes=draw(st.sampled_from([5, 15, 30, 45, 60, 90])),
            buffer_before_minutes=draw(st.sampled_from([0, 5, 15])),
            buffer_after_minutes=draw(st.sampled_from([0, 10, 30])),
        ),
        staff=staff,
        closures=closures,
        busy=busy,
        now=anchor + timedelta(minutes=draw(st.integers(-3 * 1440, 3 * 1440 // 2))),
        start_date=start_date,
        end_date=end_date,
        window=draw(
            st.none()
            | st.none()
            | st.sampled_from(list(PARTS_OF_DAY.values()))
            | st.tuples(MINUTE_OF_DAY, MINUTE_OF_DAY)
            .filter(lambda w: w[0] < w[1])
            .map(lambda w: (as_time(w[0]), as_time(w[1])))
        ),
        anchor=anchor,
    )


def earliest_reaching(tz: ZoneInfo, day: date, t: time) -> datetime:
    """Brute force: the first whole minute whose wall clock reads `day t` or later.

    That is the documented meaning of a local bound: a gap time becomes the end
    of the gap, a repeated time its first occurrence.
    """
    wanted = datetime.combine(day, t)
    instant = wanted.replace(tzinfo=tz).astimezone(UTC) - timedelta(hours=3)
    while instant.astimezone(tz).replace(tzinfo=None) < wanted:
        instant += timedelta(minutes=1)
    return instant


def within_window(sc: Scenario, instant: datetime) -> bool:
    return sc.window is None or sc.window[0] <= instant.astimezone(sc.tz).time() < sc.window[1]


def in_date_range(sc: Scenario, instant: datetime) -> bool:
    return sc.start_date <= instant.astimezone(sc.tz).date() <= sc.end_date


def reference_pairs(sc: Scenario) -> list[tuple[datetime, int]]:
    """Every (start, staff) pair, by walking each working interval minute-exactly."""
    duration = timedelta(minutes=sc.service.duration_minutes)
    before = timedelta(minutes=sc.service.buffer_before_minutes)
    after = timedelta(minutes=sc.service.buffer_after_minutes)
    step = timedelta(minutes=sc.policy.slot_step_minutes)
    last_day = sc.now.astimezone(sc.tz).date() + timedelta(days=sc.policy.max_days_ahead)
    pairs = []
    for member in sc.staff:
        if sc.service.id not in member.service_ids:
            continue
        day = sc.start_date
        while day <= sc.end_date:
            for t0, t1 in member.weekly_hours.get(day.weekday(), ()):
                start, end = earliest_reaching(sc.tz, day, t0), earliest_reaching(sc.tz, day, t1)
                s = start
                while s + duration <= end:
                    if (
                        s.astimezone(sc.tz).date() == day
                        and s >= sc.now + timedelta(minutes=sc.policy.min_notice_minutes)
                        and day <= last_day
                        and within_window(sc, s)
                        and not any(
                            b.staff_id == member.id
                            and b.start < s + duration + after
                            and s - before < b.end
                            for b in sc.busy
                        )
                        and not any(
                            c.staff_id in (None, member.id) and c.start < s + duration and s < c.end
                            for c in sc.closures
                        )
                    ):
                        pairs.append((s, member.id))
                    s += step
            day += timedelta(days=1)
    return sorted(pairs)


def busy_minutes(sc: Scenario, staff_id: int, day: date) -> int:
    start = earliest_reaching(sc.tz, day, time())
    end = earliest_reaching(sc.tz, day + timedelta(days=1), time())
    minutes: set[datetime] = set()
    for b in sc.busy:
        if b.staff_id == staff_id:
            m = max(b.start, start)
            while m < min(b.end, end):
                minutes.add(m)
                m += timedelta(minutes=1)
    return len(minutes)


def reference_pooled(sc: Scenario) -> list[tuple[datetime, int]]:
    by_start: dict[datetime, list[int]] = defaultdict(list)
    for s, staff_id in reference_pairs(sc):
        by_start[s].append(staff_id)
    return [
        (s, min(ids, key=lambda i: (busy_minutes(sc, i, s.astimezone(sc.tz).date()), i)))
        for s, ids in sorted(by_start.items())
    ]


PROPERTY_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(scenarios())
def test_find_slots_matches_the_brute_force_reference(sc: Scenario) -> None:
    duration = timedelta(minutes=sc.service.duration_minutes)

    every_pair = sc.find(any_staff=False)
    pooled = sc.find(any_staff=True)

    assert [(s.start, s.staff_id) for s in every_pair] == reference_pairs(sc)
    assert [(s.start, s.staff_id) for s in pooled] == reference_pooled(sc)
    assert all(s.end - s.start == duration for s in every_pair + pooled)
    assert all(s.start.utcoffset() == timedelta(0) for s in every_pair + pooled)


@PROPERTY_SETTINGS
@given(scenarios())
def test_offered_slots_obey_every_rule(sc: Scenario) -> None:
    before = timedelta(minutes=sc.service.buffer_before_minutes)
    after = timedelta(minutes=sc.service.buffer_after_minutes)
    earliest = sc.now + timedelta(minutes=sc.policy.min_notice_minutes)
    last_day = sc.now.astimezone(sc.tz).date() + timedelta(days=sc.policy.max_days_ahead)
    staff = {m.id: m for m in sc.staff}

    for slot in sc.find(any_staff=False):
        day = slot.start.astimezone(sc.tz).date()
        member = staff[slot.staff_id]
        assert sc.service.id in member.service_ids
        assert any(
            earliest_reaching(sc.tz, day, t0) <= slot.start
            and slot.end <= earliest_reaching(sc.tz, day, t1)
            for t0, t1 in member.weekly_hours[day.weekday()]
        )
        assert not any(
            b.staff_id == slot.staff_id
            and b.start < slot.end + after
            and slot.start - before < b.end
            for b in sc.busy
        )
        assert not any(
            c.staff_id in (None, slot.staff_id) and c.start < slot.end and slot.start < c.end
            for c in sc.closures
        )
        assert slot.start >= earliest
        assert sc.start_date <= day <= min(sc.end_date, last_day)
        assert within_window(sc, slot.start)
        assert exists_on_the_wall(slot.start, sc.tz)


@PROPERTY_SETTINGS
@given(scenarios(), st.data())
def test_check_slot_agrees_with_find_slots(sc: Scenario, data: st.DataObject) -> None:
    every_pair = {(s.start, s.staff_id) for s in sc.find(any_staff=False)}
    pooled = {s.start: s.staff_id for s in sc.find(any_staff=True)}
    step = timedelta(minutes=sc.policy.slot_step_minutes)
    duration = timedelta(minutes=sc.service.duration_minutes)
    offered = {s for s, _ in every_pair}
    nearby = {
        s + d for s in offered for d in (-step, -timedelta(minutes=1), timedelta(minutes=1), step)
    }
    anywhere = data.draw(
        st.lists(
            st.integers(0, 5 * 1440).map(lambda m: sc.anchor + timedelta(minutes=m)), max_size=30
        )
    )

    for start in sorted(offered | nearby | set(anywhere)):
        searched = in_date_range(sc, start) and within_window(sc, start)
        for member in sc.staff:
            result = check_slot(**sc.common(), start=start, staff_id=member.id)
            assert ((start, member.id) in every_pair) == (result.ok and searched)
            assert (result.slot == Slot(start, start + duration, member.id)) == result.ok
            assert (result.reason is None) == result.ok
        any_result = check_slot(**sc.common(), start=start)
        assert (start in pooled) == (any_result.ok and searched)
        if start in pooled:
            assert any_result.slot == Slot(start, start + duration, pooled[start])
