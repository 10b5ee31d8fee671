"""The availability engine: which (start, staff) pairs can take a booking.

Pure Python over plain data, so the booking write path can re-run exactly the
same rules inside its transaction (`check_slot`), and so it can be tested and
timed without Django. All instants are aware datetimes; working hours are local
wall-clock times in the business's zone.

Internally every instant is an integer count of microseconds since the epoch:
integer arithmetic is exact (no rounding at interval edges) and several times
faster than datetime arithmetic in the inner loops.
"""

from __future__ import annotations

import enum
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Final
from zoneinfo import ZoneInfo

PARTS_OF_DAY: Final[Mapping[str, tuple[time, time]]] = {
    "morning": (time(8), time(12)),
    "afternoon": (time(12), time(17)),
    "evening": (time(17), time(21)),
}


@dataclass(frozen=True, slots=True)
class Policy:
    slot_step_minutes: int = 15
    min_notice_minutes: int = 60
    max_days_ahead: int = 60

    def __post_init__(self) -> None:
        if self.slot_step_minutes <= 0:
            raise ValueError("slot_step_minutes must be positive")
        if self.min_notice_minutes < 0 or self.max_days_ahead < 0:
            raise ValueError("min_notice_minutes and max_days_ahead must not be negative")


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    id: int
    duration_minutes: int
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0

    def __post_init__(self) -> None:
        if self.duration_minutes <= 0:
            raise ValueError("duration_minutes must be positive")
        if self.buffer_before_minutes < 0 or self.buffer_after_minutes < 0:
            raise ValueError("buffers must not be negative")


@dataclass(frozen=True, slots=True)
class StaffSpec:
    """A staff member; `weekly_hours` maps weekday (0=Monday) to local intervals.

    Breaks are the gaps between intervals; a missing weekday is a day off.
    Intervals are normalised to sorted tuples and must not overlap, otherwise
    one instant could be offered twice for the same person.
    """

    id: int
    service_ids: frozenset[int]
    weekly_hours: Mapping[int, Sequence[tuple[time, time]]] = field(hash=False)

    def __post_init__(self) -> None:
        hours: dict[int, tuple[tuple[time, time], ...]] = {}
        for weekday, intervals in self.weekly_hours.items():
            if weekday not in range(7):
                raise ValueError(f"weekday must be 0..6, got {weekday!r}")
            ordered = tuple(sorted(intervals))
            for start, end in ordered:
                if start.tzinfo is not None or end.tzinfo is not None:
                    raise ValueError("working hours are naive local times")
                if not start < end:
                    raise ValueError(f"working interval {start}-{end} is empty or crosses midnight")
            for (_, prev_end), (next_start, _) in pairwise(ordered):
                if next_start < prev_end:
                    raise ValueError(f"overlapping working intervals on weekday {weekday}")
            if ordered:
                hours[weekday] = ordered
        # Frozen, so normalise through object.__setattr__; callers may pass lists.
        object.__setattr__(self, "weekly_hours", hours)
        object.__setattr__(self, "service_ids", frozenset(self.service_ids))


def _require_span(start: datetime, end: datetime) -> None:
    if start.utcoffset() is None or end.utcoffset() is None:
        raise ValueError("start and end must be aware datetimes")
    if not start < end:
        raise ValueError("end must be after start")


@dataclass(frozen=True, slots=True)
class Closure:
    """The business (staff_id=None) or one staff member is closed for [start, end)."""

    start: datetime
    end: datetime
    staff_id: int | None = None

    def __post_init__(self) -> None:
        _require_span(self.start, self.end)


@dataclass(frozen=True, slots=True)
class Busy:
    """An existing appointment's span for one staff member, buffers included."""

    staff_id: int
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _require_span(self.start, self.end)


@dataclass(frozen=True, slots=True)
class Slot:
    """A bookable service span in UTC; buffers are not part of it."""

    start: datetime
    end: datetime
    staff_id: int


class Unavailable(enum.StrEnum):
    """Why a slot cannot be booked, in the order the checks run."""

    NOT_OFFERED = "not_offered"
    TOO_SOON = "too_soon"
    TOO_FAR_AHEAD = "too_far_ahead"
    OUTSIDE_HOURS = "outside_hours"
    # Inside working hours but between grid points: "10:07" when slots are 10:00/10:15.
    OFF_GRID = "off_grid"
    CLOSED = "closed"
    TAKEN = "taken"


_REASON_RANK: Final = {reason: rank for rank, reason in enumerate(Unavailable)}


@dataclass(frozen=True, slots=True)
class SlotCheck:
    slot: Slot | None
    reason: Unavailable | None

    @property
    def ok(self) -> bool:
        return self.slot is not None


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)
_MINUTE: Final = 60_000_000
_DAY: Final = timedelta(days=1)
_MIDNIGHT: Final = time()


def _us(dt: datetime) -> int:
    return (dt - _EPOCH) // _ONE_US


def _utc(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _time_us(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond


def _offset_us(dt: datetime) -> int:
    offset = dt.utcoffset()
    assert offset is not None  # always called on datetimes carrying a ZoneInfo
    return offset // _ONE_US


def _merge(spans: list[tuple[int, int]], *, touching: bool) -> tuple[list[int], list[int]]:
    """Merge spans sorted by start into disjoint ones, returned as (starts, ends).

    Both lists come out strictly increasing, so either can be bisected. Blocked
    ranges are open, so blocked ranges that only touch stay apart: their shared
    end point is a free start.
    """
    starts: list[int] = []
    ends: list[int] = []
    for a, b in spans:
        if ends and (a < ends[-1] or (touching and a == ends[-1])):
            if b > ends[-1]:
                ends[-1] = b
        else:
            starts.append(a)
            ends.append(b)
    return starts, ends


def _inside(starts: list[int], ends: list[int], point: int) -> bool:
    """Whether point lies strictly inside one of the merged open ranges."""
    i = bisect_left(starts, point) - 1
    return i >= 0 and point < ends[i]


def _to_slots(pairs: list[tuple[int, int]], duration_us: int) -> list[Slot]:
    """Build Slots from sorted (start_us, staff_id) pairs.

    Building a timedelta costs ten times adding one, and consecutive starts are
    mostly one step apart, so datetimes are made by adding cached differences.
    """
    duration = timedelta(microseconds=duration_us)
    gaps: dict[int, timedelta] = {}
    slots: list[Slot] = []
    prev_us, prev = 0, _EPOCH
    for s, staff_id in pairs:
        gap = s - prev_us
        if gap:
            delta = gaps.get(gap)
            if delta is None:
                delta = gaps[gap] = timedelta(microseconds=gap)
            prev_us, prev = s, prev + delta
        slots.append(Slot(prev, prev + duration, staff_id))
    return slots


class _Engine:
    """State shared by find_slots and check_slot, so both apply identical rules."""

    def __init__(
        self,
        *,
        tz: ZoneInfo,
        policy: Policy,
        service: ServiceSpec,
        members: Sequence[StaffSpec],
        closures: Iterable[Closure],
        busy: Iterable[Busy],
        now: datetime,
        first_day: date,
        last_day: date,
    ) -> None:
        self.tz = tz
        self.step = policy.slot_step_minutes * _MINUTE
        self.duration = service.duration_minutes * _MINUTE
        self.earliest = _us(now) + policy.min_notice_minutes * _MINUTE
        self.last_bookable_day = now.astimezone(tz).date() + timedelta(days=policy.max_days_ahead)
        self._resolved: dict[tuple[date, time], tuple[int, int, bool]] = {}

        # Every service span inside the working hours of these days lies within
        # [h0, h1] (resolve never goes backwards), so busy time and closures that
        # cannot reach it are skipped before paying for conversion and sorting.
        h0 = _utc(self.resolve(first_day, _MIDNIGHT)[0])
        h1 = _utc(self.resolve(last_day + _DAY, _MIDNIGHT)[0])
        before = timedelta(minutes=service.buffer_before_minutes)
        after = timedelta(minutes=service.buffer_after_minutes)
        busy_from, busy_to = h0 - before, h1 + after

        raw: dict[int, list[tuple[int, int]]] = {m.id: [] for m in members}
        spans_of = raw.get
        for b in busy:
            if b.end > busy_from and b.start < busy_to:
                spans = spans_of(b.staff_id)
                if spans is not None:
                    spans.append((_us(b.start), _us(b.end)))
        business: list[tuple[int, int]] = []
        own: dict[int, list[tuple[int, int]]] = {m.id: [] for m in members}
        for c in closures:
            if c.end > h0 and c.start < h1 and (c.staff_id is None or c.staff_id in own):
                span = (_us(c.start), _us(c.end))
                (business if c.staff_id is None else own[c.staff_id]).append(span)

        # A start s is blocked by busy [b0, b1) iff the buffered span
        # [s - before, s + duration + after) overlaps it, i.e. b0 - duration - after < s
        # < b1 + before; by a closure [c0, c1) iff c0 - duration < s < c1.
        # Shifting merged busy spans gives the same union as shifting each one.
        dur, bef, aft = self.duration, before // _ONE_US, after // _ONE_US
        self.busy: dict[int, tuple[list[int], list[int]]] = {}
        self.taken: dict[int, tuple[list[int], list[int]]] = {}
        self.closed: dict[int, tuple[list[int], list[int]]] = {}
        self.blocked: dict[int, tuple[list[int], list[int]]] = {}
        for staff_id, spans in raw.items():
            spans.sort()
            starts, ends = self.busy[staff_id] = _merge(spans, touching=True)
            taken = [(b0 - dur - aft, b1 + bef) for b0, b1 in zip(starts, ends, strict=True)]
            self.taken[staff_id] = _merge(taken, touching=False)
            closed = sorted((c0 - dur, c1) for c0, c1 in business + own[staff_id])
            self.closed[staff_id] = _merge(closed, touching=False)
            if closed:
                blocked = sorted(taken + closed)
                self.blocked[staff_id] = _merge(blocked, touching=False)
            else:
                self.blocked[staff_id] = self.taken[staff_id]

    def resolve(self, day: date, t: time) -> tuple[int, int, bool]:
        """Local wall time -> (utc_us, offset_us, exact).

        A fall-back time that happens twice means its first occurrence (fold=0);
        a spring-forward time that never happens means the first instant after
        the gap, and exact=False. Either way the result is the earliest instant
        whose wall clock reaches `t`, so the mapping never goes backwards.
        """
        key = (day, t)
        hit = self._resolved.get(key)
        if hit is not None:
            return hit
        if t != _MIDNIGHT:
            d0, offset0, exact0 = self.resolve(day, _MIDNIGHT)
            _, offset1, exact1 = self.resolve(day + _DAY, _MIDNIGHT)
            if exact0 and exact1 and offset0 == offset1:
                # Same offset at both midnights means no transition today (tzdb has
                # no two offset changes within 48 hours since 1970), so the wall
                # clock runs in step with UTC all day: skip the zoneinfo round trip.
                result = (d0 + _time_us(t), offset0, True)
                self._resolved[key] = result
                return result
        naive = datetime.combine(day, t)
        local = naive.replace(tzinfo=self.tz)
        offset = _offset_us(local)
        utc = _us(naive.replace(tzinfo=UTC)) - offset
        if _utc(utc).astimezone(self.tz).replace(tzinfo=None) == naive:
            result = (utc, offset, True)
        else:
            # In a gap fold=0 applied the old offset, landing past the transition,
            # and fold=1 the new one, landing before it. Bisect for the transition.
            later = _offset_us(local.replace(fold=1))
            lo, hi = _us(naive.replace(tzinfo=UTC)) - later, utc
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offset_us(_utc(mid).astimezone(self.tz)) == later:
                    hi = mid
                else:
                    lo = mid
            result = (hi, later, False)
        self._resolved[key] = result
        return result

    def busy_on(self, staff_id: int, day: date) -> int:
        """Microseconds of the staff member's busy time within the local day."""
        d0 = self.resolve(day, _MIDNIGHT)[0]
        d1 = self.resolve(day + _DAY, _MIDNIGHT)[0]
        starts, ends = self.busy[staff_id]
        total = 0
        i = bisect_right(ends, d0)
        while i < len(starts) and starts[i] < d1:
            total += min(ends[i], d1) - max(starts[i], d0)
            i += 1
        return total

    def starts(self, member: StaffSpec, day: date, window: tuple[int, int] | None) -> list[int]:
        """Free, bookable start instants of one staff member on one local day."""
        out: list[int] = []
        intervals = member.weekly_hours.get(day.weekday())
        if not intervals:
            return out
        block_a, block_b = self.blocked[member.id]
        n_blocks = len(block_a)
        step = self.step
        for t0, t1 in intervals:
            ws, ws_offset, ws_exact = self.resolve(day, t0)
            we, we_offset, we_exact = self.resolve(day, t1)
            lo = max(ws, self.earliest)
            hi = we - self.duration
            # Without a transition inside the interval, wall time is the UTC time
            # plus one fixed offset, so the date is `day` throughout and the window
            # is a plain range. (Assumes no two transitions within one interval,
            # which tzdb has no instance of.)
            linear = ws_exact and we_exact and ws_offset == we_offset
            if linear and window is not None:
                shift = ws - _time_us(t0)
                lo = max(lo, window[0] + shift)
                hi = min(hi, window[1] + shift - 1)
            if lo > hi:
                continue
            # Walk the free gaps between blocked ranges; emit grid points in each.
            i = bisect_right(block_b, lo)
            x = lo
            while x <= hi:
                if i < n_blocks and block_a[i] < x:
                    x = block_b[i]
                    i += 1
                    continue
                y = hi if i == n_blocks else min(hi, block_a[i])
                grid = range(ws - (ws - x) // step * step, y + 1, step)
                if linear:
                    out.extend(grid)
                else:
                    out.extend(s for s in grid if self._wall_fits(s, day, window))
                if i == n_blocks:
                    break
                x = block_b[i]
                i += 1
        return out

    def _wall_fits(self, s: int, day: date, window: tuple[int, int] | None) -> bool:
        wall = _utc(s).astimezone(self.tz)
        if wall.date() != day:
            return False
        return window is None or window[0] <= _time_us(wall.time()) < window[1]

    def reason(self, member: StaffSpec, service_id: int, s: int, day: date) -> Unavailable | None:
        """Why `s` (whose local date is `day`) is not bookable with `member`, or None."""
        if service_id not in member.service_ids:
            return Unavailable.NOT_OFFERED
        if s < self.earliest:
            return Unavailable.TOO_SOON
        if day > self.last_bookable_day:
            return Unavailable.TOO_FAR_AHEAD
        within = False
        on_grid = False
        for t0, t1 in member.weekly_hours.get(day.weekday(), ()):
            ws = self.resolve(day, t0)[0]
            we = self.resolve(day, t1)[0]
            if ws <= s <= we - self.duration:
                within = True
                if (s - ws) % self.step == 0:
                    on_grid = True
                    break
        if not within:
            return Unavailable.OUTSIDE_HOURS
        if not on_grid:
            return Unavailable.OFF_GRID
        if _inside(*self.closed[member.id], s):
            return Unavailable.CLOSED
        if _inside(*self.taken[member.id], s):
            return Unavailable.TAKEN
        return None


def find_slots(
    *,
    tz: ZoneInfo,
    policy: Policy,
    service: ServiceSpec,
    staff: Sequence[StaffSpec],
    closures: Iterable[Closure],
    busy: Iterable[Busy],
    now: datetime,
    start_date: date,
    end_date: date,
    window: tuple[time, time] | None = None,
    staff_id: int | None = None,
    any_staff: bool = True,
) -> list[Slot]:
    """Bookable slots whose local start date is in [start_date, end_date], by (start, staff).

    A start is offered when the service span fits inside one working interval
    (candidates step from the interval's start in absolute time, so DST days
    have their real length), the buffered span misses the staff member's busy
    time, the service span misses closures, it is at least min_notice after
    `now` and at most max_days_ahead local days after today. Buffers may reach
    outside working hours and into closures: setting up before opening is the
    business's call, a double booking is not. `window` keeps starts whose local
    time t satisfies window[0] <= t < window[1].

    With any_staff=True each start instant is offered once, with the eligible
    staff member who has the fewest busy minutes that local day (lowest id on a
    tie), which spreads the load; any_staff=False lists every (start, staff) pair.
    """
    if window is not None and not window[0] < window[1]:
        raise ValueError("window must have start < end")
    today = now.astimezone(tz).date()
    # Slots of an earlier day end before the wall clock first reads today, so
    # before `now` (even where clocks once fell back across midnight).
    first = max(start_date, today)
    last = min(end_date, today + timedelta(days=policy.max_days_ahead))
    members = [
        m for m in staff if service.id in m.service_ids and (staff_id is None or m.id == staff_id)
    ]
    if first > last or not members:
        return []
    engine = _Engine(
        tz=tz,
        policy=policy,
        service=service,
        members=members,
        closures=closures,
        busy=busy,
        now=now,
        first_day=first,
        last_day=last,
    )
    bounds = None if window is None else (_time_us(window[0]), _time_us(window[1]))
    pool = any_staff and len(members) > 1
    chosen: dict[int, int] = {}
    pairs: list[tuple[int, int]] = []
    day = first
    while day <= last:
        weekday = day.weekday()
        working = [m for m in members if weekday in m.weekly_hours]
        if pool and len(working) > 1:
            working.sort(key=lambda m: (engine.busy_on(m.id, day), m.id))
        for m in working:
            found = engine.starts(m, day, bounds)
            if pool:
                # Members come in preference order, so the first claim wins.
                for s in found:
                    chosen.setdefault(s, m.id)
            else:
                pairs.extend((s, m.id) for s in found)
        day += _DAY
    if pool:
        pairs = sorted(chosen.items())
    else:
        pairs.sort()
    return _to_slots(pairs, engine.duration)


def check_slot(
    *,
    tz: ZoneInfo,
    policy: Policy,
    service: ServiceSpec,
    staff: Sequence[StaffSpec],
    closures: Iterable[Closure],
    busy: Iterable[Busy],
    now: datetime,
    start: datetime,
    staff_id: int | None = None,
) -> SlotCheck:
    """Whether one start can be booked, under exactly the rules of find_slots.

    With staff_id=None any staff member will do and the one find_slots would
    offer is chosen. When nobody can take it, the reason is the one that got
    furthest through the checks (a taken slot says more than an unoffered one).
    The date range and `window` of find_slots are search filters, not booking
    rules, so they are not checked here.
    """
    if start.utcoffset() is None:
        raise ValueError("start must be an aware datetime")
    s = _us(start)
    day = start.astimezone(tz).date()
    candidates = [m for m in staff if staff_id is None or m.id == staff_id]
    if not candidates:
        return SlotCheck(slot=None, reason=Unavailable.NOT_OFFERED)
    engine = _Engine(
        tz=tz,
        policy=policy,
        service=service,
        members=candidates,
        closures=closures,
        busy=busy,
        now=now,
        first_day=day,
        last_day=day,
    )
    free: list[StaffSpec] = []
    worst: Unavailable | None = None
    for m in candidates:
        reason = engine.reason(m, service.id, s, day)
        if reason is None:
            free.append(m)
        elif worst is None or _REASON_RANK[reason] > _REASON_RANK[worst]:
            worst = reason
    if not free:
        return SlotCheck(slot=None, reason=worst)
    pick = min(free, key=lambda m: (engine.busy_on(m.id, day), m.id))
    return SlotCheck(slot=Slot(_utc(s), _utc(s + engine.duration), pick.id), reason=None)
