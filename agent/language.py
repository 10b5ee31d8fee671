"""Deterministic understanding of everyday booking language.

`parse()` turns one customer message into an `Utterance`: what the customer
wants (intents) and the details they gave (service, staff, dates, times,
contact data, a booking reference, a choice from a list). It uses no network
and no model, so the offline assistant answers the same way every time.

Rules a reader of the dialogue needs to know:

* Everything relative is computed from `now` seen in the business's zone
  `tz`; dates and times in the result are local to that zone, never UTC.
* A bare weekday ("Thursday", "this Thursday") is its next occurrence, today
  included. "next Thursday" is the Thursday of next calendar week (weeks run
  Monday to Sunday), so on a Tuesday "next Friday" is ten days away, not three;
  the dialogue should say the date back. "Thursday after next" is a week after
  the bare reading.
* "this week" is today to Sunday, "next week" Monday to Sunday of the next
  week, "the weekend" the coming Saturday and Sunday (or the rest of it when
  said on a weekend), "next weekend" the weekend of next week.
* A calendar date without a year that has passed this year means next year;
  "the 15th" is the next 15th. Numeric dates follow the region: month first
  in the US ("12/3" is December 3), day first elsewhere, unless only one
  reading is possible ("25/12").
* Bare hours are business hours: 1-7 mean pm, 8-11 am, 12 noon ("at 3" is
  15:00). A part of the day said in the same message wins ("tonight at 8" is
  20:00, "7 in the morning" 07:00). A leading zero or 13-23 means a 24-hour
  clock.
* Parts of the day: morning 08-12, afternoon 12-17, evening/tonight 17-21.
  "after T" runs from T to 21:00, "before T" from 08:00 to T. Windows are
  half open: a slot fits when start <= slot start < end. Several windows in
  one message are intersected ("afternoon after 3" is 15-17).
* An exact time makes a bare part of the day redundant: "tomorrow morning
  at 7" gives exact_time 07:00 and no time_window.
* When a message names several dates or times, one negated ("not Thursday",
  "instead of Thursday", "Thursday doesn't work") is dropped, and after a
  correction cue ("actually", "I mean", "no,") only the later ones count.
  Remaining dates are spanned ("Monday or Wednesday" is Monday..Wednesday);
  of several exact times the first is kept. In "move my Thursday 3pm to
  Friday at 4" only the new values (after "to") are read.
* Intents come from explicit words. BOOK needs booking words ("book",
  "an appointment", "come in") or a wish ("I'd like", "can I get") together
  with a service or a time; a bare "cleaning tomorrow" has no intent, only
  details. CORRECTION needs a new detail in the same message ("actually
  Friday"); YES/NO come with it when said ("no, Thursday instead").
* `gibberish` is true when nothing at all was recognised.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import Enum, StrEnum
from functools import lru_cache
from typing import Final, Literal, TypeVar, get_args
from zoneinfo import ZoneInfo

import phonenumbers

from agent import lexicon as lx

__all__ = ["DateSpec", "Expecting", "Intent", "TimeWindow", "Utterance", "parse"]


class Intent(StrEnum):
    BOOK = "book"
    CANCEL = "cancel"
    RESCHEDULE = "reschedule"
    FIND_MY_APPOINTMENTS = "find_my_appointments"
    AVAILABILITY = "availability"
    PRICE = "price"
    HOURS = "hours"
    LOCATION = "location"
    POLICY = "policy"
    SERVICES = "services"
    WAITLIST = "waitlist"
    HUMAN = "human"
    GREETING = "greeting"
    THANKS = "thanks"
    GOODBYE = "goodbye"
    YES = "yes"
    NO = "no"
    CORRECTION = "correction"


# What the assistant just asked for; it loosens the reading of short replies.
Expecting = Literal["name", "phone", "email", "reference", "slot_choice", "service", "date"]
_EXPECTING: Final = frozenset(get_args(Expecting))

TimeWindow = tuple[time, time]


@dataclass(frozen=True, slots=True)
class DateSpec:
    """One local date (start == end) or an inclusive range of local dates."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("DateSpec end is before its start")

    @classmethod
    def on(cls, day: date) -> DateSpec:
        return cls(day, day)

    @property
    def is_single_day(self) -> bool:
        return self.start == self.end

    def days(self) -> Iterator[date]:
        day = self.start
        while day <= self.end:
            yield day
            day += timedelta(days=1)

    def __contains__(self, day: object) -> bool:
        # A datetime is a date subclass but does not compare with one.
        if not isinstance(day, date) or isinstance(day, datetime):
            return False
        return self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class Utterance:
    """What one message says. Unset details are None (or empty)."""

    intents: frozenset[Intent] = frozenset()
    # The service meant, when exactly one fits; the candidates (best first)
    # let the dialogue ask "Cleaning or Deep Cleaning?" when several do.
    service: str | None = None
    service_candidates: tuple[str, ...] = ()
    staff: str | None = None
    staff_candidates: tuple[str, ...] = ()
    dates: DateSpec | None = None
    time_window: TimeWindow | None = None
    exact_time: time | None = None
    # "earliest", "first available", "asap": the first free slot is wanted.
    earliest: bool = False
    name: str | None = None
    phone: str | None = None  # E.164
    email: str | None = None
    reference: str | None = None  # canonical "K7Q-4MZ"
    # 1-based position in the list the assistant offered; -1 is "the last one".
    choice: int | None = None
    gibberish: bool = False


def parse(
    text: str,
    *,
    now: datetime,
    tz: ZoneInfo,
    service_names: Sequence[str],
    staff_names: Sequence[str] = (),
    default_region: str = "US",
    expecting: Expecting | None = None,
) -> Utterance:
    """Read one customer message. Never raises on any text."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    if expecting is not None and expecting not in _EXPECTING:
        raise ValueError(f"unknown expecting value: {expecting!r}")
    ctx = _Ctx(
        today=now.astimezone(tz).date(),
        month_first=default_region.upper() in _MONTH_FIRST_REGIONS,
        expecting=expecting,
        region=default_region.upper(),
    )
    services = _entries(tuple(service_names), titles=False)
    staff = _entries(tuple(staff_names), titles=True)

    raw = _normalise(text)
    email, raw = _take_email(raw, ctx)
    reference, raw = _take_reference(raw, ctx)
    phone, raw = _take_phone(raw, ctx)
    service_words = frozenset(tok for entry in services for tok in (*entry.tokens, entry.compact))
    staff_words = frozenset(tok for entry in staff for tok in entry.tokens)
    protected = service_words | staff_words
    name, raw = _take_name(raw, ctx, service_words)

    work = _rewrite(_lower(raw), protected)
    earliest = _EARLIEST.search(work) is not None
    scan = _mask_pleasantries(work)
    # "move my Thursday 3pm to Friday": only the new day and time are wanted.
    old = _OLD_VALUE_RE.search(scan)
    if old:
        scan = _hole(scan, old.start("old"), old.end("old"))
    dates, scan = _take_dates(scan, ctx)
    window, exact, scan = _take_times(scan, ctx)
    choice, scan = _take_choice(scan, ctx)
    if old:
        # The appointment being moved may still say who it is with.
        scan = (
            scan[: old.start("old")]
            + work[old.start("old") : old.end("old")]
            + scan[old.end("old") :]
        )

    service, service_candidates = _match_services(work, services)
    staff_name, staff_candidates = _match_staff(scan, staff)

    found_detail = any(
        x is not None for x in (service, staff_name, dates, window, exact, choice)
    ) or bool(service_candidates or staff_candidates)
    intents = _intents(
        work,
        has_service=bool(service_candidates),
        has_when=dates is not None or window is not None or exact is not None or earliest,
        # "actually my number is ..." corrects a detail too.
        has_detail=found_detail or any(x is not None for x in (name, phone, email)),
    )
    nothing = not intents and not found_detail and not earliest
    nothing = nothing and all(x is None for x in (name, phone, email, reference))
    return Utterance(
        intents=intents,
        service=service,
        service_candidates=service_candidates,
        staff=staff_name,
        staff_candidates=staff_candidates,
        dates=dates,
        time_window=window,
        exact_time=exact,
        earliest=earliest,
        name=name,
        phone=phone,
        email=email,
        reference=reference,
        choice=choice,
        gibberish=nothing,
    )


# ---------------------------------------------------------------------------
# Text preparation

# Longer messages are cut: nobody books with an essay, and it bounds the work.
_MAX_CHARS: Final = 2000
# Masked spans become this character: it is neither a word nor a space, so a
# pattern cannot run across a removed piece.
_HOLE: Final = "\x00"
_D = "[0-9]"  # \d would also accept other scripts' digits

_MONTH_FIRST_REGIONS: Final = frozenset(
    {"US", "CA", "PH", "PR", "GU", "VI", "AS", "MP", "UM", "FM", "MH", "PW"}
)

_TYPOGRAPHY = str.maketrans(
    {
        "\u2019": "'",
        "\u2018": "'",
        "\u02bc": "'",
        "`": "'",
        "\u00b4": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u2010": "-",
        "\u2011": "-",
    }
)
_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


@dataclass(frozen=True, slots=True)
class _Ctx:
    today: date
    month_first: bool
    expecting: Expecting | None
    region: str


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text[:_MAX_CHARS])[:_MAX_CHARS]
    text = text.translate(_TYPOGRAPHY)
    return "".join(" " if unicodedata.category(c) in _CONTROL_CATEGORIES else c for c in text)


def _lower(text: str) -> str:
    # Same length as the input, so spans found in one apply to the other.
    return "".join(low if len(low := c.lower()) == 1 else c for c in text)


def _hole(text: str, start: int, end: int) -> str:
    return text[:start] + _HOLE * (end - start) + text[end:]


def _alt(words: Iterable[str]) -> str:
    ordered = sorted(set(words), key=len, reverse=True)
    return "|".join(re.escape(w).replace(r"\ ", r"[\s-]+") for w in ordered)


_WORD_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def _osa(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance, giving up (limit + 1) past `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def _typo_limit(a: str, b: str) -> int:
    """Edits tolerated between a typed word and a known one."""
    if min(len(a), len(b)) < 5:
        return 0
    return 1 if max(len(a), len(b)) < 8 else 2


def _closest(word: str, candidates: Iterable[str]) -> str | None:
    """The single candidate within typo distance of `word`, if exactly one."""
    best: str | None = None
    best_distance = 99
    tie = False
    for cand in candidates:
        limit = _typo_limit(word, cand)
        if limit == 0:
            continue
        distance = _osa(word, cand, limit)
        if distance > limit:
            continue
        if distance < best_distance:
            best, best_distance, tie = cand, distance, False
        elif distance == best_distance and cand != best:
            tie = True
    return None if tie else best


_PHRASE_FIXES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"\b([ap])\.\s?m\b\.?", r"\1m"),
        (r"\bo\s?'?\s?clock\b", "o'clock"),
        (r"&", " and "),
        (r"@\s*(?=[0-9])", "at "),
        (r"\bid\s+(?=like|love|prefer|rather)", "i'd "),
        (r"\bw/\s*", "with "),
        (r"\bcheck[\s-]?ups?\b", "checkup"),
        (r"\bwait(?:ing)?[\s-]?list", "waitlist"),
        (r"\bre-(?=schedul|book)", "re"),
    )
)

_HOUR_WORDS = {
    **{k: v for k, v in lx.UNITS.items() if v > 0},
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
}
_MINUTE_WORDS = {
    "five": 5,
    "ten": 10,
    "fifteen": 15,
    "twenty": 20,
    "twenty five": 25,
    "thirty": 30,
    "thirty five": 35,
    "forty": 40,
    "forty five": 45,
    "fifty": 50,
    "fifty five": 55,
}
_CLOCK_WORDS_RE = re.compile(
    rf"\b(?P<h>{_alt(_HOUR_WORDS)}|{_D}{{1,2}})\s+(?P<oh>oh\s+)?(?P<m>{_alt(_MINUTE_WORDS)})\b"
    r"(?!\s*(?:minutes?|hours?|days?|weeks?|months?|years?|people|persons?|dollars|bucks))"
)
_ONE_AFTER_CUE_RE = re.compile(
    r"\b(?P<cue>at|around|about|by|after|before|from|until|till|between|and|to|in|option|number)\s+one\b"
)
_ONE_BEFORE_UNIT_RE = re.compile(r"\bone(?=\s*(?:am|pm|o'clock|days?|weeks?|months?)\b)")
_COMPOUND_NUMBER_RE = re.compile(
    rf"\b(?P<tens>{_alt(lx.TENS)})(?:[\s-]+(?P<unit>{_alt(k for k in lx.UNITS if k != 'zero')}))?\b"
    rf"(?![\s-]+(?:{_alt(lx.ORDINAL_UNITS)}))"
)
_SMALL_NUMBERS = {**lx.UNITS, **lx.TEENS}
_SMALL_NUMBER_RE = re.compile(
    rf"\b(?P<n>{_alt([*(k for k in lx.UNITS if k != 'one'), *lx.TEENS])})\b"
)


def _rewrite(low: str, protected: frozenset[str]) -> str:
    """Shorthand, typos and number words made plain, on lower-case text."""
    for pattern, replacement in _PHRASE_FIXES:
        low = pattern.sub(replacement, low)

    def fix(m: re.Match[str]) -> str:
        word = m.group()
        if word in lx.ALIASES:
            return lx.ALIASES[word]
        if len(word) < 5 or not word.isalpha() or word in lx.VOCABULARY or word in protected:
            return word
        if any(_osa(word, p, 1) <= 1 for p in protected if _typo_limit(word, p)):
            return word
        return _closest(word, lx.CORRECTABLE) or word

    low = _WORD_RE.sub(fix, low)

    def clock(m: re.Match[str]) -> str:
        hour = m.group("h")
        h = int(hour) if hour.isdigit() else _HOUR_WORDS[hour]
        minute = _MINUTE_WORDS[re.sub(r"[\s-]+", " ", m.group("m"))]
        if not 1 <= h <= 23:
            return m.group()
        return f"{h}:{minute:02d}"

    low = _CLOCK_WORDS_RE.sub(clock, low)
    low = _ONE_AFTER_CUE_RE.sub(r"\g<cue> 1", low)
    low = _ONE_BEFORE_UNIT_RE.sub("1", low)

    def compound(m: re.Match[str]) -> str:
        unit = m.group("unit")
        return str(lx.TENS[m.group("tens")] + (lx.UNITS[unit] if unit else 0))

    low = _COMPOUND_NUMBER_RE.sub(compound, low)
    return _SMALL_NUMBER_RE.sub(lambda m: str(_SMALL_NUMBERS[m.group("n")]), low)


_OLD_VALUE_RE = re.compile(
    r"\b(?:move|moving|change|changing|switch|switching|shift|reschedule|rescheduling|push|bring|swap)"
    r"\b(?P<old>[^.?!,;]{0,60}?)\bto\b(?!\s+(?:be|do|see|come|know|have|make|get|book|cancel))"
)
_PLEASANTRIES_RE = re.compile(
    r"\bhave\s+a\s+(?:good|nice|great|lovely|wonderful|fantastic)\s+"
    r"(?:day|morning|afternoon|evening|night|weekend|week|one)\b"
    r"|\benjoy\s+(?:the|your)\s+(?:day|evening|weekend)\b"
    r"|\bgood\s*(?:morning|afternoon|evening|night|day)\b"
    r"(?!\s+(?:slot|time|appointment|for|works|is|would|please))"
)


def _mask_pleasantries(text: str) -> str:
    # "good morning" greets; it does not ask for a morning slot.
    for m in reversed(list(_PLEASANTRIES_RE.finditer(text))):
        text = _hole(text, m.start(), m.end())
    return text


# ---------------------------------------------------------------------------
# Contact details and references

_EMAIL_RE = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])"
)
_SPOKEN_EMAIL_FIXES = (
    (re.compile(r"\s+(?:at)\s+", re.I), "@"),
    (re.compile(r"\s+(?:dot|period)\s+", re.I), "."),
    (re.compile(r"\s+(?:underscore)\s+", re.I), "_"),
    (re.compile(r"\s+(?:dash|hyphen)\s+", re.I), "-"),
)


def _canonical_email(found: str) -> str:
    local, _, domain = found.rpartition("@")
    return f"{local}@{domain.lower()}"


def _take_email(text: str, ctx: _Ctx) -> tuple[str | None, str]:
    m = _EMAIL_RE.search(text)
    if m:
        return _canonical_email(m.group()), _hole(text, m.start(), m.end())
    if ctx.expecting == "email":
        spoken = text.strip()
        for pattern, replacement in _SPOKEN_EMAIL_FIXES:
            spoken = pattern.sub(replacement, spoken)
        m = _EMAIL_RE.search(spoken)
        if m:
            return _canonical_email(m.group()), _HOLE * len(text)
    return None, text


_REF_CHARS = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_EDGE = " .,!?:;'\"\x00"
_REF_STRICT_RE = re.compile(rf"(?<![\w-])([{_REF_CHARS}]{{3}})-([{_REF_CHARS}]{{3}})(?![\w-])")
_REF_LOOSE = rf"([{_REF_CHARS}]{{3}})[\s-]?([{_REF_CHARS}]{{3}})"
_REF_LOOSE_RE = re.compile(rf"(?<![\w-]){_REF_LOOSE}(?![\w-])", re.I)
_REF_CUE_RE = re.compile(
    r"\b(?:reference|ref|confirmation|booking\s+(?:code|number|id|reference)|code)"
    rf"(?:\s*(?:number|code|no\.?|#))?\s*(?:is|:|=|#)?\s*{_REF_LOOSE}(?![\w-])",
    re.I,
)


def _reference_ok(left: str, right: str) -> bool:
    """Refuse ordinary words that happen to use only reference characters."""
    pair = (left + right).lower()
    if any(c.isdigit() for c in pair):
        return True
    return pair not in lx.VOCABULARY and not (
        left.lower() in lx.VOCABULARY and right.lower() in lx.VOCABULARY
    )


def _take_reference(text: str, ctx: _Ctx) -> tuple[str | None, str]:
    for m in _REF_STRICT_RE.finditer(text):
        if _reference_ok(m.group(1), m.group(2)):
            return f"{m.group(1)}-{m.group(2)}", _hole(text, m.start(), m.end())
    cued = _REF_CUE_RE.search(text)
    if cued and _reference_ok(cued.group(1), cued.group(2)):
        ref = f"{cued.group(1)}-{cued.group(2)}".upper()
        return ref, _hole(text, cued.start(), cued.end())
    if ctx.expecting == "reference":
        for m in _REF_LOOSE_RE.finditer(text):
            alone = not text[: m.start()].strip(_EDGE) and not text[m.end() :].strip(_EDGE)
            spaced = " " in m.group()
            if spaced and not alone and not any(c.isdigit() for c in m.group()):
                continue
            if _reference_ok(m.group(1), m.group(2)):
                ref = f"{m.group(1)}-{m.group(2)}".upper()
                return ref, _hole(text, m.start(), m.end())
    return None, text


# Digit runs shaped like a phone number that did not validate: hidden anyway so
# "555-0142" is not read as a time or a choice.
_PHONE_LIKE_RE = re.compile(
    r"(?<![\w/])(?:\+[0-9]{1,3}[\s.-]?)?(?:\([0-9]{3}\)\s?|[0-9]{3}[\s.-]?)?[0-9]{3}[\s.-][0-9]{4}(?![\w/])"
    r"|(?<![\w/])\+?[0-9]{7,15}(?![\w/])"
)
_SPOKEN_DIGIT_RE = re.compile(
    rf"\b(?:(?P<times>double|triple)\s+)?(?P<d>{_alt(lx.DIGIT_WORDS)})\b", re.I
)


def _take_phone(text: str, ctx: _Ctx) -> tuple[str | None, str]:
    region = ctx.region if ctx.region in phonenumbers.SUPPORTED_REGIONS else "US"
    phone: str | None = None
    for match in phonenumbers.PhoneNumberMatcher(
        text, region, leniency=phonenumbers.Leniency.VALID
    ):
        if phone is None:
            phone = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        text = _hole(text, match.start, match.end)
    if phone is None and ctx.expecting == "phone":

        def digits(m: re.Match[str]) -> str:
            times = {"double": 2, "triple": 3}.get((m.group("times") or "").lower(), 1)
            return lx.DIGIT_WORDS[m.group("d").lower()] * times

        spoken = _SPOKEN_DIGIT_RE.sub(digits, text)
        spoken = re.sub(r"(?<=[0-9])[\s,.-]+(?=[0-9])", "", spoken)
        for match in phonenumbers.PhoneNumberMatcher(
            spoken, region, leniency=phonenumbers.Leniency.VALID
        ):
            phone = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            return phone, _HOLE * len(text)
    for m in reversed(list(_PHONE_LIKE_RE.finditer(text))):
        text = _hole(text, m.start(), m.end())
    return phone, text


# ---------------------------------------------------------------------------
# The customer's name

_NAME_TOKEN_RE = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*\.?")
_NAME_GAP_RE = re.compile(r"[ \t]+")
_STRONG_NAME_CUE_RE = re.compile(
    r"\b(?:my\s+(?:full\s+)?name\s+is|my\s+name's|the\s+name\s+is|the\s+name's|name\s*:|"
    r"name\s+is|call\s+me(?!\s+(?:back|later|at|on|tomorrow))|it's\s+under|booked\s+under|"
    r"(?:booking|appointment|reservation)\s+(?:is\s+)?under|under\s+the\s+name(?:\s+of)?|"
    r"put\s+it\s+under|i\s+go\s+by)\s+",
    re.I,
)
_WEAK_NAME_CUE_RE = re.compile(r"\b(?:i'm|i\s+am|this\s+is|here\s+is|it's)\s+", re.I)
_NAME_PARTICLES = frozenset(
    {"de", "van", "von", "da", "di", "del", "della", "la", "le", "du", "bin", "al", "st."}
)
_BARE_NAME_RE = re.compile(
    r"^\W*(?:(?:yes|yeah|sure|ok|okay|hi|hello|hey)\b\W*)?(?:(?:it's|its|it\s+is|name)\s*:?\s*)?"
    r"(?P<name>[^\W\d_]+(?:['-][^\W\d_]+)*\.?(?:[ \t]+[^\W\d_]+(?:['-][^\W\d_]+)*\.?){0,3})"
    r"(?:[ \t]+(?:here|speaking))?\W*$",
    re.I,
)


def _read_name(text: str, pos: int, *, strong: bool, loose: bool) -> tuple[str, int] | None:
    """Up to four name words from `pos`; returns (name, end of the last word).

    After a strong cue ("my name is") any first word but a function word is
    taken; after a weak one ("I'm", "this is") only a capitalised word that is
    not ordinary English. `loose` also accepts lower-case words.
    """
    words: list[str] = []
    end = pos
    while len(words) < 4:
        start = end
        if words:
            gap = _NAME_GAP_RE.match(text, end)
            if gap is None:
                break
            start = gap.end()
        m = _NAME_TOKEN_RE.match(text, start)
        if m is None:
            break
        word = m.group()
        initial = len(word) == 2 and word.endswith(".")
        bare = word if initial else word.rstrip(".")
        low = bare.rstrip(".").lower()
        capital = bare[:1].isupper()
        if low in lx.NAME_STOP:
            break
        if not words:
            ok = strong or ((capital or loose) and low not in lx.VOCABULARY)
            # "my name is john smith": a lower-case first name sets the style.
            loose = loose or (strong and not capital)
        elif low in _NAME_PARTICLES:
            ok = True
        elif capital:
            ok = strong or low not in lx.VOCABULARY
        else:
            ok = loose and low not in lx.VOCABULARY
        if not ok:
            break
        words.append(bare)
        end = start + len(bare)
        if word != bare:
            break  # a full stop ended the sentence
    while words and words[-1].lower() in _NAME_PARTICLES:
        words.pop()
    if not words:
        return None
    return _tidy_name(words), end


def _tidy_name(words: list[str]) -> str:
    name = " ".join(words)
    if not (name.islower() or name.isupper()):
        return name
    tidy = []
    for i, word in enumerate(words):
        if i and word.lower() in _NAME_PARTICLES:
            tidy.append(word.lower())
        else:
            tidy.append("-".join(part.capitalize() for part in word.lower().split("-")))
    return " ".join(tidy)


def _take_name(text: str, ctx: _Ctx, services: frozenset[str]) -> tuple[str | None, str]:
    loose = ctx.expecting == "name"
    lowered = text.lower() == text
    for cue_re, strong in ((_STRONG_NAME_CUE_RE, True), (_WEAK_NAME_CUE_RE, False)):
        for cue in cue_re.finditer(text):
            if not strong and cue.group().lower().startswith("it's") and not loose:
                continue
            found = _read_name(text, cue.end(), strong=strong, loose=loose or (strong and lowered))
            if found is None:
                continue
            name, end = found
            if not strong and any(w.lower() in services for w in name.split()):
                continue  # "I'm cleaning ..." is not a name
            return name, _hole(text, cue.start(), end)
    if loose:
        m = _BARE_NAME_RE.match(text)
        if m:
            words = [
                w if len(w) == 2 and w.endswith(".") else w.rstrip(".") for w in m["name"].split()
            ]
            lows = [w.rstrip(".").lower() for w in words]
            if (
                lows[0] not in lx.VOCABULARY
                and not any(w in lx.NAME_STOP for w in lows)
                and not any(w in services for w in lows)
            ):
                return _tidy_name(words), _HOLE * len(text)
    return None, text


# ---------------------------------------------------------------------------
# Dates


class _Miss(Enum):
    """A pattern matched words that are not a date here ("sat" as a verb)."""

    MISS = 0


_MISS: Final = _Miss.MISS
_DateResult = DateSpec | None | _Miss

_FULL_DAYS = [d for d in lx.WEEKDAYS if len(d) > 5]
_WD = rf"(?:(?:{_alt(_FULL_DAYS)})s?|{_alt(d for d in lx.WEEKDAYS if len(d) <= 5)})"
_MON = rf"(?:{_alt(lx.MONTHS)})\.?"
_ORD_WORDS = _alt(lx.ORDINAL_WORDS)
_DAYNUM = rf"(?:{_D}{{1,2}}(?:st|nd|rd|th)?|{_ORD_WORDS})"
_NOT_CHOICE = r"(?!\s+(?:one|ones|option|choice|slot|time|of\s+(?:them|those|these)))"
_COUNT = r"(?:[0-9]{1,2}|a|an|a\s+couple\s+of|a\s+couple|couple\s+of|a\s+few|few)"
_WEEK_CUES = frozenset(
    {
        "on",
        "this",
        "next",
        "by",
        "till",
        "until",
        "from",
        "to",
        "before",
        "after",
        "every",
        "or",
        "and",
        "coming",
        "following",
        "that",
        "through",
        "thru",
    }
)


_NOT_BEFORE_WEEKDAY = frozenset(
    {"i", "you", "we", "they", "he", "she", "it", "the", "a", "have", "has", "had", "was", "were"}
    | {
        "just",
        "in",
        "under",
        "my",
        "your",
        "our",
        "their",
        "his",
        "her",
        "who",
        "been",
        "and",
        "or",
    }
)


def _weekday_of(word: str) -> int:
    word = word.rstrip(".")
    if word not in lx.WEEKDAYS and word.endswith("s"):
        word = word[:-1]
    return lx.WEEKDAYS[word]


def _day_number(token: str) -> int:
    token = re.sub(r"[\s-]+", " ", token.strip())
    if token in lx.ORDINAL_WORDS:
        return lx.ORDINAL_WORDS[token]
    key = token.replace(" ", "-")
    if key in lx.ORDINAL_WORDS:
        return lx.ORDINAL_WORDS[key]
    return int(re.sub(r"(st|nd|rd|th)$", "", token))


def _month_of(token: str) -> int:
    return lx.MONTHS[token.rstrip(".")]


def _make_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _upcoming(ctx: _Ctx, month: int, day: int, year: int | None) -> DateSpec | None:
    """A calendar date; without a year, a date already past means next year."""
    if year is not None:
        found = _make_date(year if year >= 100 else 2000 + year, month, day)
        return DateSpec.on(found) if found else None
    found = _make_date(ctx.today.year, month, day)
    if found is None and month == 2 and day == 29:
        found = next(
            (
                d
                for y in range(ctx.today.year + 1, ctx.today.year + 5)
                if (d := _make_date(y, 2, 29))
            ),
            None,
        )
    if found is not None and found < ctx.today:
        found = _make_date(ctx.today.year + 1, month, day)
    return DateSpec.on(found) if found else None


def _week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _next_weekday(ctx: _Ctx, weekday: int) -> date:
    return ctx.today + timedelta(days=(weekday - ctx.today.weekday()) % 7)


def _day_of_month(ctx: _Ctx, day: int, weekday: int | None = None) -> DateSpec | None:
    """The next date with this day of month (and weekday, when given)."""
    first: date | None = None
    year, month = ctx.today.year, ctx.today.month
    for _ in range(15):
        found = _make_date(year, month, day)
        if found is not None and found >= ctx.today:
            if weekday is None or found.weekday() == weekday:
                return DateSpec.on(found)
            first = first or found
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return DateSpec.on(first) if first else None


def _month_range(ctx: _Ctx, month: int, part: str | None) -> DateSpec | None:
    year = ctx.today.year + (1 if month < ctx.today.month else 0)
    first = date(year, month, 1)
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    part = re.sub(r"^(?:the\s+)", "", part or "")
    if part.startswith(("early", "beginning", "start")):
        start, end = first, first.replace(day=10)
    elif part.startswith(("mid", "middle")):
        start, end = first.replace(day=11), first.replace(day=20)
    elif part.startswith(("late", "end")):
        start, end = first.replace(day=21), last
    else:
        start, end = first, last
    start = max(start, ctx.today)
    return DateSpec(start, end) if start <= end else None


def _count(token: str) -> int:
    token = token.strip()
    if token.isdigit():
        return int(token)
    if "couple" in token:
        return 2
    if "few" in token:
        return 3
    return 1


def _add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    for d in range(day.day, 27, -1):
        found = _make_date(year, month, d)
        if found:
            return found
    return date(year, month, min(day.day, 28))


def _date_iso(m: re.Match[str], ctx: _Ctx) -> _DateResult:
    found = _make_date(int(m["y"]), int(m["m"]), int(m["d"]))
    return DateSpec.on(found) if found else None


def _date_numeric(m: re.Match[str], ctx: _Ctx) -> _DateResult:
    a, b = int(m["a"]), int(m["b"])
    month, day = (a, b) if ctx.month_first else (b, a)
    if month > 12 and day <= 12:
        month, day = day, month
    if not 1 <= month <= 12:
        return None
    year = int(m["y"]) if m["y"] else None
    return _upcoming(ctx, month, day, year)


def _date_month_day(m: re.Match[str], ctx: _Ctx) -> _DateResult:
    month = _month_of(m["mon"])
    first = _upcoming(ctx, month, _day_number(m["d"]), int(m["y"]) if m["y"] else None)
    if first is None or not m["d2"]:
        return first
    last = _make_date(first.start.year, month, _day_number(m["d2"]))
    if last is None or last < first.start:
        return first
    return DateSpec(first.start, last)


def _date_weekday_day(m: re.Match[str], ctx: _Ctx) -> _DateResult:
    return _day_of_month(ctx, _day_number(m["d"]), _weekday_of(m["wd"]))


def _date_plus(days: int) -> Callable[[re.Match[str], _Ctx], _DateResult]:
    def handler(m: re.Match[str], ctx: _Ctx) -> _DateResult:
        return DateSpec.on(ctx.today + timedelta(days=days))

    return handler


def _date_week_after_next(m: re.Match[str], ctx: _Ctx) -> _DateResult:
    start = _week_start(ctx.today) + timedelta(days=14)
    return DateSpec(start, start + timedelta(days=6))


def _date_weekday_in_week(m: re.Match[str], ctx: _Ctx) -> _DateResult:
    weekday = _weekday_of(m["wd"] or m["wd2"])
    which = m["which"] or m["which2"]
    if which == "this":
        return DateSpec.on(_next_weekday(ctx, weekday))
    return DateSpec.on(_week_start(ctx.today) + timedelta(days=7 + weekday))


def _date_week(m: re.Match[str], ctx: _Ctx) -> _DateResult:
    which = m["which"]
    part = re.sub(r"^the\s+", "", m["part"] or "")
    monday = _week_start(ctx.today)
    if which in ("next", "following"):
        monday += timedelta(days=7)
    elif which == "the" and not part:
        return _MISS
    sunday = monday + timedelta(days=6)
    if part in ("early", "start of", "beginning of"):
        start, end = monday, monday + timedelta(days=2)
    elif part in ("late", "end of"):
        start, end = monday + timedelta(days=3), sunday
    elif part in ("middle of", "mid"):
        start, end = monday + timedelta(days=2), monday + timedelta(days=3)
    elif part == "later":
        start, end = ctx.today + timedelta(days=1), sunday
    else:
        start, end = monday, sunday
    start = max(start, ctx.today)
    if end < start:
        return DateSpec.on(ctx.today)
    return DateSpec(start, end)


def _date_weekend(m: re.Match[str], ctx: _Ctx) -> _DateResult:
    saturday = _week_start(ctx.today) + timedelta(days=5)
    if m["which"] in ("next", "following"):
        saturday += timedelta(days=7)
    start = max(saturday, ctx.today)
    return DateSpec(start, saturday + timedelta(days=1))


def _date_next_weekday(m: re.Match[str], ctx: _Ctx) -> _DateResult:
    weekday = _weekday_of(m["wd"])
    if m["which"] in ("next", "following"):
        return DateSpec.on(_week_start(ctx.today) + timedelta(days=7 + weekday))
    return DateSpec.on(_next_weekday(ctx, weekday))


def _date_weekday_after_next(m: re.Match[str], ctx: _Ctx) -> _DateResult:
    return DateSpec.on(_next_weekday(ctx, _weekday_of(m["wd"])) + timedelta(days=7))


def _date_relative(m: re.Match[str], ctx: _Ctx) -> _DateResult:
    n, unit = (m["n"], m["unit"]) if m["n"] else (m["n2"], m["unit2"])
    count = _count(n)
    base = ctx.today + timedelta(days=1 if (m["base"] or "") == "tomorrow" else 0)
    if unit.startswith("day"):
        return DateSpec.on(base + timedelta(days=count))
    if unit.startswith("week"):
        return DateSpec.on(base + timedelta(days=7 * count))
    if unit.startswith("fortnight"):
        return DateSpec.on(base + timedelta(days=14 * count))
    return DateSpec.on(_add_months(base, count))


def _date_bare_weekday(m: re.Match[str], ctx: _Ctx) -> _DateResult:
    word = m["wd"]
    if word in lx.AMBIGUOUS_WEEKDAYS:
        before = m.string[: m.start()].split()
        after = m.string[m.end() :].strip(" ,.!?")
        cued = bool(before) and before[-1] in _WEEK_CUES
        # "Sat 10am" and "can I come sat" are days; "I sat", "the sun" are not.
        dated = after[:1].isdigit()
        last = not after and bool(before) and before[-1] not in _NOT_BEFORE_WEEKDAY
        if not (cued or dated or last or not (before or after)):
            return _MISS
    return DateSpec.on(_next_weekday(ctx, _weekday_of(word)))


def _date_month_alone(m: re.Match[str], ctx: _Ctx) -> _DateResult:
    return _month_range(ctx, _month_of(m["mon"]), m["part"])


def _date_this_month(m: re.Match[str], ctx: _Ctx) -> _DateResult:
    if m["which"] == "next":
        return _month_range(ctx, _add_months(ctx.today.replace(day=1), 1).month, m["part"])
    if m["which"] == "the" and not m["part"]:
        return _MISS
    return _month_range(ctx, ctx.today.month, m["part"])


def _date_day_of_month(m: re.Match[str], ctx: _Ctx) -> _DateResult:
    if ctx.expecting in ("slot_choice", "service") and not m["on"]:
        return _MISS
    day = _day_number(m["d"])
    if not m["d"][0].isdigit() and not m["on"] and ctx.expecting != "date":
        return _MISS
    return _day_of_month(ctx, day)


def _date_bare_number(m: re.Match[str], ctx: _Ctx) -> _DateResult:
    if ctx.expecting != "date":
        return _MISS
    return _day_of_month(ctx, _day_number(m["d"]))


@dataclass(frozen=True, slots=True)
class _DateRule:
    regex: re.Pattern[str]
    handler: Callable[[re.Match[str], _Ctx], _DateResult]
    roll: bool = False  # a weekday: an end before its start moves a week on
    keep: bool = False  # leave the words for the time reader ("tonight")


_PART = r"(?P<part>early|late|later|mid|(?:the\s+)?(?:end|start|beginning|middle)\s+of)"
_DATE_RULES: tuple[_DateRule, ...] = tuple(
    _DateRule(re.compile(pattern), handler, roll, keep)
    for pattern, handler, roll, keep in (
        (rf"\b(?P<y>{_D}{{4}})-(?P<m>{_D}{{1,2}})-(?P<d>{_D}{{1,2}})\b", _date_iso, False, False),
        (
            rf"(?<![0-9/.:])(?P<a>{_D}{{1,2}})/(?P<b>{_D}{{1,2}})(?:/(?P<y>{_D}{{4}}|{_D}{{2}}))?(?![0-9/])",
            _date_numeric,
            False,
            False,
        ),
        (
            rf"(?:\b{_WD},?\s+)?\b(?P<mon>{_MON})(?:\s+the)?\s+(?P<d>{_DAYNUM})\b"
            rf"(?:\s*(?:-|to|through|thru|until|till)\s*(?P<d2>{_DAYNUM})\b)?"
            rf"(?:,?\s+(?P<y>{_D}{{4}}))?(?!\s*(?::|am\b|pm\b|o'clock))",
            _date_month_day,
            False,
            False,
        ),
        (
            rf"(?:\b{_WD},?\s+)?(?:\bthe\s+)?\b(?P<d>{_D}{{1,2}}(?:st|nd|rd|th)?|{_ORD_WORDS})"
            rf"(?:\s*(?:-|to|through|thru|until|till)\s*(?P<d2>{_DAYNUM}))?"
            rf"\s+(?:of\s+)?(?P<mon>{_MON})\b(?:,?\s+(?P<y>{_D}{{4}}))?",
            _date_month_day,
            False,
            False,
        ),
        (
            rf"\b(?P<wd>{_WD}),?\s+(?:the\s+)?(?P<d>{_D}{{1,2}}(?:st|nd|rd|th)|{_ORD_WORDS})\b{_NOT_CHOICE}",
            _date_weekday_day,
            False,
            False,
        ),
        (r"\b(?:the\s+)?day\s+after\s+tomorrow\b|\bovermorrow\b", _date_plus(2), False, False),
        (r"\b(?:the\s+)?week\s+after\s+next\b", _date_week_after_next, False, False),
        (
            rf"\b(?P<n>{_COUNT})\s+(?P<unit>days?|weeks?|months?)\s+(?:from\s+)?(?P<base>today|now|tomorrow)\b"
            rf"|\bin\s+(?P<n2>{_COUNT})\s+(?P<unit2>days?|weeks?|months?|fortnights?)\b",
            _date_relative,
            False,
            False,
        ),
        (r"\bin\s+a\s+fortnight\b", _date_plus(14), False, False),
        (
            rf"\b(?P<wd>{_WD})\s+(?:of\s+|in\s+)?(?:the\s+)?(?P<which>next|this|coming|following)\s+week\b"
            rf"|\b(?P<which2>next|this|coming|following)\s+week\s*,?\s*(?:on\s+)?(?P<wd2>{_WD})\b",
            _date_weekday_in_week,
            False,
            False,
        ),
        (
            rf"\b(?:{_PART}[\s-]+)?(?P<which>next|this|coming|following|the)\s+week\b",
            _date_week,
            False,
            False,
        ),
        (
            r"\b(?:(?P<which>next|this|coming|following|the|this\s+coming)\s+)?weekend\b",
            _date_weekend,
            False,
            False,
        ),
        (rf"\b(?:the\s+)?(?P<wd>{_WD})\s+after\s+next\b", _date_weekday_after_next, True, False),
        (
            rf"\b(?P<which>next|this|coming|this\s+coming|following)\s+(?P<wd>{_WD})\b",
            _date_next_weekday,
            True,
            False,
        ),
        (
            r"\b(?:later\s+)?today\b|\bright\s+now\b|\bthis\s+(?=morning|afternoon|evening)",
            _date_plus(0),
            False,
            False,
        ),
        (r"\btonight\b", _date_plus(0), False, True),
        (r"\btomorrow\b", _date_plus(1), False, False),
        (rf"\b(?P<wd>{_WD})\b", _date_bare_weekday, True, False),
        (
            rf"\b(?:{_PART}|in|during|for|throughout|sometime\s+in)[\s-]+(?:the\s+month\s+of\s+)?(?P<mon>{_MON})(?![\w.])",
            _date_month_alone,
            False,
            False,
        ),
        (
            rf"\b(?:{_PART}[\s-]+)?(?P<which>this|next|the)\s+month\b",
            _date_this_month,
            False,
            False,
        ),
        (
            rf"(?:(?P<on>\bon)\s+)?(?:\bthe\s+)?\b(?P<d>{_D}{{1,2}}(?:st|nd|rd|th)|{_ORD_WORDS})\b{_NOT_CHOICE}"
            r"(?!\s+(?:thing|time|visit|available|availability|opening|appointment|floor))",
            _date_day_of_month,
            False,
            False,
        ),
        (rf"^\W*(?:the\s+)?(?P<d>{_D}{{1,2}})\W*$", _date_bare_number, False, False),
    )
)


@dataclass(frozen=True, slots=True)
class _Mention:
    start: int
    end: int
    spec: DateSpec
    roll: bool


@dataclass(frozen=True, slots=True)
class _TimeMention:
    start: int
    end: int
    at: time


_M = TypeVar("_M", _Mention, _TimeMention)

_NEGATED_BEFORE_RE = re.compile(
    r"(?:\bnot|n't|\bexcept(?:\s+for)?|\bother\s+than|\binstead\s+of|\bbut\s+not|\bcan't\s+do|"
    r"\bcannot\s+do|\bcan't\s+make|\bcannot\s+make|\bunable\s+to\s+do|\bbesides|\bapart\s+from)"
    r"\s*(?:on\s+|at\s+)?(?:the\s+)?$"
)
_NEGATED_AFTER_RE = re.compile(
    r"^\s*(?:(?:at|around|in\s+the)\s+[\w:]+\s+)?(?:is\s+|'s\s+)?(?:doesn't|does\s+not|won't|will\s+not|isn't|is\s+not|no\s+good|"
    r"not\s+good|is\s+bad|is\s+out|is\s+no|no\s+longer|not\s+possible|i\s+can't|i\s+cannot|is\s+taken|is\s+full)\b"
)
_CORRECTION_CUE_RE = re.compile(
    r"\b(?:actually|i\s+mean|i\s+meant|sorry|rather|make\s+it|change\s+it\s+to|scratch\s+that|"
    r"on\s+second\s+thought|wait|no|instead|how\s+about|what\s+about)\b"
)
_RANGE_JOIN_RE = re.compile(r"^\W*(?:-|to|through|thru|until|till|and)\W*$")


def _negated(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - 30) : start].replace(_HOLE, " ")
    after = text[end : end + 30]
    return bool(_NEGATED_BEFORE_RE.search(before) or _NEGATED_AFTER_RE.match(after))


def _after_last_correction(text: str, mentions: list[_M]) -> list[_M]:
    if len(mentions) < 2:
        return mentions
    cues = [m.end() for m in _CORRECTION_CUE_RE.finditer(text)]
    for cue in reversed(cues):
        later = [m for m in mentions if m.start >= cue]
        if later and len(later) < len(mentions):
            return later
    return mentions


def _take_dates(text: str, ctx: _Ctx) -> tuple[DateSpec | None, str]:
    original = text
    mentions: list[_Mention] = []
    for rule in _DATE_RULES:
        hits: list[tuple[int, int, DateSpec | None]] = []
        for m in rule.regex.finditer(text):
            if m.end() == m.start():
                continue
            try:
                result = rule.handler(m, ctx)
            except (OverflowError, ValueError):  # "in 99 months" near date.max
                result = None
            if isinstance(result, _Miss):
                continue
            hits.append((m.start(), m.end(), result))
        for start, end, spec in hits:
            if spec is not None:
                mentions.append(_Mention(start, end, spec, rule.roll))
            if not rule.keep:
                text = _hole(text, start, end)
    mentions.sort(key=lambda m: m.start)
    kept = [m for m in mentions if not _negated(original, m.start, m.end)]
    kept = _after_last_correction(original, kept)
    if not kept:
        return None, text
    # "Monday to Wednesday": a weekday range end before its start is next week's.
    ordered: list[DateSpec] = [kept[0].spec]
    for prev, cur in itertools.pairwise(kept):
        spec = cur.spec
        joined = _RANGE_JOIN_RE.match(original[prev.end : cur.start].replace(_HOLE, " "))
        if joined and cur.roll and spec.start < ordered[-1].start:
            with contextlib.suppress(OverflowError):
                spec = DateSpec(spec.start + timedelta(days=7), spec.end + timedelta(days=7))
        ordered.append(spec)
    return DateSpec(min(s.start for s in ordered), max(s.end for s in ordered)), text


# ---------------------------------------------------------------------------
# Times of day

_DAY_START: Final = time(8, 0)
_DAY_END: Final = time(21, 0)
_LAST_MINUTE: Final = time(23, 59)


def _clock_pattern(n: int) -> str:
    return (
        rf"(?:(?P<w{n}>(?:12\s+)?noon|midday|midnight)"
        rf"|(?P<h{n}>{_D}{{1,2}})(?:[:.](?P<m{n}>[0-5]{_D}))?"
        rf"(?:\s*(?P<ap{n}>[ap])m\b|(?P<aq{n}>[ap])\b)?(?P<oc{n}>\s*o'clock)?)"
    )


_T1, _T2 = _clock_pattern(1), _clock_pattern(2)
_NOT_QUANTITY = (
    r"(?!\s*(?:%|/|\$|dollars?|bucks|people|persons?|minutes?|hours?|days?|weeks?|months?|years?|"
    r"st\b|nd\b|rd\b|th\b|x\b|times\b))"
)
_BEFORE_NUMBER = r"(?<![0-9/:.$£€#,-])"


@dataclass(frozen=True, slots=True)
class _Clock:
    hour: int
    minute: int
    meridiem: str | None  # "a" / "p" when said
    fixed: bool  # 24-hour or named (noon): no am/pm reading needed


def _clock(m: re.Match[str], n: int) -> _Clock | None:
    word = m[f"w{n}"]
    if word:
        return _Clock(0 if word == "midnight" else 12, 0, None, True)
    hour_text = m[f"h{n}"]
    if hour_text is None:
        return None
    hour, minute = int(hour_text), int(m[f"m{n}"] or 0)
    meridiem = m[f"ap{n}"] or m[f"aq{n}"]
    if meridiem:
        return _Clock(hour, minute, meridiem, False) if 1 <= hour <= 12 else None
    if hour > 23:
        return None
    fixed = hour == 0 or hour >= 13 or (len(hour_text) == 2 and hour_text.startswith("0"))
    return _Clock(hour, minute, None, fixed)


def _has_marker(m: re.Match[str], n: int) -> bool:
    """Said clearly as a time: 3pm, 3:30, 3 o'clock, noon."""
    return bool(
        m[f"w{n}"] or m[f"ap{n}"] or m[f"aq{n}"] or m[f"oc{n}"] or (m[f"m{n}"] and ":" in m.group())
    )


def _readings(clock: _Clock, hint: str | None) -> list[time]:
    """Possible 24-hour readings, the preferred first."""
    if clock.fixed:
        return [time(clock.hour % 24, clock.minute)]
    h = clock.hour
    if clock.meridiem:
        return [time(h % 12 + (12 if clock.meridiem == "p" else 0), clock.minute)]
    am, pm = (
        time(h % 12 if h != 12 else 12, clock.minute),
        time(h % 12 + 12 if h != 12 else 12, clock.minute),
    )
    if hint == "am":
        order = [am, pm]
    elif hint == "pm":
        order = [pm, am]
    else:
        order = [pm, am] if 1 <= h <= 7 else [am, pm]
    return list(dict.fromkeys(order))


def _after(at: time) -> TimeWindow:
    return (at, _DAY_END if at < _DAY_END else _LAST_MINUTE)


def _before(at: time) -> TimeWindow:
    if at == time(0, 0):
        return (_DAY_START, _LAST_MINUTE)
    return (_DAY_START if at > _DAY_START else time(0, 0), at)


_PERIODS: dict[str, TimeWindow] = {
    "morning": (time(8), time(12)),
    "afternoon": (time(12), time(17)),
    "evening": (time(17), time(21)),
    "night": (time(17), time(21)),
    "tonight": (time(17), time(21)),
}
_PERIOD_PARTS: dict[tuple[str, str], TimeWindow] = {
    ("early", "morning"): (time(8), time(10)),
    ("mid", "morning"): (time(9), time(11)),
    ("late", "morning"): (time(10), time(12)),
    ("early", "afternoon"): (time(12), time(15)),
    ("mid", "afternoon"): (time(13), time(16)),
    ("late", "afternoon"): (time(15), time(17)),
    ("early", "evening"): (time(17), time(19)),
    ("late", "evening"): (time(19), time(21)),
}
_PERIOD_RE = re.compile(
    r"\b(?:(?P<part>early|mid|late)[\s-]*)?(?:in\s+the\s+)?(?P<p>morning|afternoon|evening|night|tonight)s?\b"
)
_PERIOD_PHRASES: tuple[tuple[re.Pattern[str], TimeWindow], ...] = tuple(
    (re.compile(pattern), window)
    for pattern, window in (
        (r"\bafter\s+work\b", (time(17), time(21))),
        (r"\bafter\s+lunch(?:time)?\b", (time(13), time(17))),
        (r"\bbefore\s+lunch(?:time)?\b", (time(8), time(12))),
        (r"\b(?:at|over|around|during)?\s*lunch(?:time)?\b|\blunch\s+hour\b", (time(12), time(14))),
        (r"\bfirst\s+thing(?:\s+in\s+the\s+morning)?\b", (time(8), time(10))),
        (r"\bin\s+the\s+am\b", (time(8), time(12))),
        (r"\bin\s+the\s+pm\b", (time(12), time(21))),
        (r"\bend\s+of\s+(?:the\s+)?day\b", (time(15), time(21))),
    )
)
_BETWEEN_RE = re.compile(rf"\bbetween\s+{_T1}\s*(?:and|-|to)\s*{_T2}{_NOT_QUANTITY}")
_SPAN_RE = re.compile(
    rf"(?P<cue>\bfrom\s+|\b(?:any\s*time|anytime|ideally|around|about|roughly)\s+)?{_BEFORE_NUMBER}{_T1}"
    rf"\s*(?:-|to|till|until|til|thru|through)\s*{_T2}{_NOT_QUANTITY}"
)
_AFTER_RES = (
    re.compile(
        r"\b(?:after|from|since|past|no\s+earlier\s+than|not\s+before|any\s*time\s+after|later\s+than|"
        rf"starting\s+(?:at|from)|beginning\s+at)\s+{_T1}{_NOT_QUANTITY}"
    ),
    re.compile(
        rf"{_BEFORE_NUMBER}{_T1}\s+(?:or\s+later|or\s+after|onwards?|and\s+later|and\s+after|"
        r"at\s+the\s+earliest)\b"
    ),
)
_BEFORE_RES = (
    re.compile(
        r"\b(?:before|by|until|till|til|no\s+later\s+than|not\s+after|earlier\s+than|up\s+to|latest)\s+"
        rf"{_T1}{_NOT_QUANTITY}"
    ),
    re.compile(rf"{_BEFORE_NUMBER}{_T1}\s+(?:or\s+earlier|or\s+before|at\s+the\s+latest)\b"),
)
# "7 in the morning", "8 tonight": the part of the day settles am/pm.
_ATTACHED_RE = re.compile(
    rf"{_BEFORE_NUMBER}(?<!\w){_T1}\s+(?:in\s+the\s+(?P<p>morning|afternoon|evening)|(?P<tonight>tonight)|"
    r"at\s+(?P<night>night))\b"
)
_EITHER_RE = re.compile(
    rf"{_BEFORE_NUMBER}(?<!\w)(?:(?P<cue>at|around|about)\s+)?{_T1}\s+or\s+(?:at\s+)?{_T2}{_NOT_QUANTITY}"
)
_QUARTER_RE = re.compile(
    rf"\b(?:(?P<half>half)|(?:a\s+)?(?P<quarter>quarter))\s+(?P<rel>past|after|to|till|of)\s+{_T1}"
)
# "for", "is" and "like" are not cues: "a table for 2", "is 2 ok?", "I'd like 2".
_CUED_RE = re.compile(
    rf"(?:\b(?P<cue>at|around|about|approximately|approx|say|maybe|circa)\s+|~\s*){_T1}{_NOT_QUANTITY}"
)
# "book it for 3" is a time, though "a table for 3" is not.
_BOOK_FOR_RE = re.compile(
    rf"\b(?:book|schedule|reserve|make\s+it|put\s+me\s+down|pencil\s+me\s+in)\s+(?:it\s+|me\s+|us\s+|that\s+|one\s+)?"
    rf"(?:in\s+)?for\s+{_T1}{_NOT_QUANTITY}"
)
_ISH_RE = re.compile(rf"{_BEFORE_NUMBER}\b(?P<h1>{_D}{{1,2}})(?::(?P<m1>[0-5]{_D}))?\s*-?ish\b")
_PLAIN_RE = re.compile(rf"{_BEFORE_NUMBER}(?<!\w){_T1}{_NOT_QUANTITY}")


def _hint(window: TimeWindow | None) -> str | None:
    if window is None:
        return None
    if window[1] <= time(12):
        return "am"
    if window[0] >= time(12):
        return "pm"
    return None


def _pick_range(first: _Clock, second: _Clock, hint: str | None) -> TimeWindow | None:
    starts, ends = _readings(first, hint), _readings(second, hint)
    if first.meridiem is None and not first.fixed and second.meridiem:
        # "2-4pm": the first end shares the second's half of the day when it fits.
        shared = _readings(_Clock(first.hour, first.minute, second.meridiem, False), None)
        starts = [*shared, *starts]
    for start in starts:
        for end in ends:
            if start < end:
                return (start, end)
    return None


def _intersect(a: TimeWindow, b: TimeWindow) -> TimeWindow | None:
    start, end = max(a[0], b[0]), min(a[1], b[1])
    return (start, end) if start < end else None


def _take_times(text: str, ctx: _Ctx) -> tuple[TimeWindow | None, time | None, str]:
    original = text
    exacts: list[_TimeMention] = []
    for m in list(_ATTACHED_RE.finditer(text)):
        clock = _clock(m, 1)
        if clock is not None:
            said = "evening" if m["tonight"] or m["night"] else m["p"]
            at = _readings(clock, _hint(_PERIODS[said]))[0]
            exacts.append(_TimeMention(m.start(), m.end(), at))
            text = _hole(text, m.start(), m.end())
    periods: list[TimeWindow] = []
    for pattern, period_window in _PERIOD_PHRASES:
        for m in list(pattern.finditer(text)):
            if m.group().strip():
                periods.append(period_window)
                text = _hole(text, m.start(), m.end())
    for m in list(_PERIOD_RE.finditer(text)):
        if not _negated(original, m.start(), m.end()):
            periods.append(_PERIOD_PARTS.get((m["part"] or "", m["p"]), _PERIODS[m["p"]]))
        text = _hole(text, m.start(), m.end())
    period: TimeWindow | None = None
    if periods:
        period = (min(p[0] for p in periods), max(p[1] for p in periods))
    hint = _hint(period)

    limits: list[TimeWindow] = []
    # "half past 2" before "past 2" is read as a lower bound.
    for m in list(_QUARTER_RE.finditer(text)):
        clock = _clock(m, 1)
        if clock is None or m["m1"] or (m["half"] and m["rel"] != "past"):
            continue
        base = datetime.combine(date(2000, 1, 3), _readings(clock, hint)[0])
        offset = timedelta(minutes=30 if m["half"] else 15)
        if m["rel"] in ("to", "till", "of"):
            offset = -offset
        exacts.append(_TimeMention(m.start(), m.end(), (base + offset).time()))
        text = _hole(text, m.start(), m.end())
    for regex in (_BETWEEN_RE, _SPAN_RE):
        for m in list(regex.finditer(text)):
            first, second = _clock(m, 1), _clock(m, 2)
            if first is None or second is None:
                continue
            cued = (
                regex is _BETWEEN_RE
                or m["cue"]
                or re.fullmatch(r"[0-9]{1,2}-[0-9]{1,2}", m.group())
            )
            if not (cued or _has_marker(m, 1) or _has_marker(m, 2)):
                continue  # "2 to 4" alone may be people or weeks
            span = _pick_range(first, second, hint)
            if span:
                limits.append(span)
                text = _hole(text, m.start(), m.end())
    for m in list(_EITHER_RE.finditer(text)):
        first, second = _clock(m, 1), _clock(m, 2)
        if first is None or second is None:
            continue
        if not (m["cue"] or _has_marker(m, 1) or _has_marker(m, 2)):
            continue
        pair = _pick_range(first, second, hint)  # "3 or 4pm": both pm
        if pair:
            middle = m.start() + m.group().index(" or ")
            exacts.append(_TimeMention(m.start(), middle, pair[0]))
            exacts.append(_TimeMention(middle, m.end(), pair[1]))
            text = _hole(text, m.start(), m.end())
    for regexes, make in ((_AFTER_RES, _after), (_BEFORE_RES, _before)):
        for regex in regexes:
            for m in list(regex.finditer(text)):
                clock = _clock(m, 1)
                if clock is None:
                    continue
                limits.append(make(_readings(clock, hint)[0]))
                text = _hole(text, m.start(), m.end())
    listing = ctx.expecting in ("slot_choice", "service")
    for regex in (_BOOK_FOR_RE, _CUED_RE, _ISH_RE, _PLAIN_RE):
        for m in list(regex.finditer(text)):
            if regex is _ISH_RE:
                clock = _Clock(int(m["h1"]), int(m["m1"] or 0), None, False)
            else:
                if regex is _PLAIN_RE and not _has_marker(m, 1):
                    continue
                maybe_pick = regex is _CUED_RE and listing and m["cue"] in ("say", "maybe")
                if maybe_pick and not _has_marker(m, 1):
                    continue  # "maybe 2" picks from the list
                clock = _clock(m, 1)
            if clock is None or clock.hour > 23:
                continue
            exacts.append(_TimeMention(m.start(), m.end(), _readings(clock, hint)[0]))
            text = _hole(text, m.start(), m.end())

    exacts.sort(key=lambda e: e.start)
    kept = [e for e in exacts if not _negated(original, e.start, e.end)]
    kept = _after_last_correction(original, kept)
    exact = kept[0].at if kept else None

    # A named part of the day only set the am/pm of an exact time: the time is
    # what was asked for ("tomorrow morning at 7" is 07:00, not 08-12).
    window: TimeWindow | None = None if exact else period
    if limits:
        combined: TimeWindow | None = limits[0]
        for limit in limits[1:]:
            combined = _intersect(combined, limit) if combined else None
        window = combined or limits[-1]
        if period is not None:
            window = _intersect(window, period) or window
    return window, exact, text


# ---------------------------------------------------------------------------
# Choosing from a list

_CHOICE_NUMBER_RE = re.compile(
    r"(?:\b(?:option|choice|number|slot|nr\.?|no\.)|#)\s*(?P<n>[0-9]{1,2})\b"
)
_CHOICE_ORDINAL_RE = re.compile(
    rf"\b(?P<o>{_ORD_WORDS}|{_D}{{1,2}}(?:st|nd|rd|th))\s+(?:one|ones|option|choice|slot|time|of\s+(?:them|those|these|the\s+\w+))\b"
)
_CHOICE_LAST_RE = re.compile(
    r"\b(?:the\s+)?(?:last|final|bottom)(?:\s+(?:one|option|choice|slot|time))?\b"
)
_CHOICE_LAST_ONE_RE = re.compile(r"\bthe\s+(?:last|final|bottom)\s+(?:one|option|choice|slot)\b")
_CHOICE_LOOSE_RE = re.compile(
    rf"(?<![\w:.])(?P<o>{_ORD_WORDS}|{_D}{{1,2}}(?:st|nd|rd|th)?)(?![\w:])"
)
# "one" alone picks the first; inside "the 3pm one" it does not.
# "the second" alone is a pick even unasked; "the 2nd" alone is a date.
_CHOICE_ORDINAL_ALONE_RE = re.compile(
    rf"^[\s,.!?]*(?:the\s+)?(?P<o>{_ORD_WORDS})(?:\s+(?:please|pls|thanks))?[\s,.!?]*$"
    rf"|\bthe\s+(?P<o2>{_ORD_WORDS})(?=\s*(?:[,.!?;]|$|please\b|pls\b|thanks\b))"
)
_CHOICE_ONE_RE = re.compile(r"^[\s,.!?]*(?:(?:number|option)\s+)?(?P<o>one)\b")


def _take_choice(text: str, ctx: _Ctx) -> tuple[int | None, str]:
    m = _CHOICE_NUMBER_RE.search(text)
    token = m["n"] if m else None
    if m is None:
        m = _CHOICE_ORDINAL_RE.search(text) or _CHOICE_ORDINAL_ALONE_RE.search(text)
        token = (m["o"] or m.groupdict().get("o2")) if m else None
    if m is not None and token is not None:
        value = _day_number(token)
        return (value if value >= 1 else None), _hole(text, m.start(), m.end())
    if ctx.expecting in ("slot_choice", "service"):
        last = _CHOICE_LAST_RE.search(text)
        if last:
            return -1, _hole(text, last.start(), last.end())
        m = _CHOICE_LOOSE_RE.search(text) or _CHOICE_ONE_RE.search(text)
        if m:
            value = 1 if m["o"] == "one" else _day_number(m["o"])
            if value >= 1:
                return value, _hole(text, m.start(), m.end())
    else:
        last = _CHOICE_LAST_ONE_RE.search(text)
        if last:
            return -1, _hole(text, last.start(), last.end())
    return None, text


# ---------------------------------------------------------------------------
# Services and staff

_NAME_STOPWORDS = frozenset(
    {"and", "or", "with", "for", "of", "the", "a", "an", "in", "on", "at", "to", "by", "plus"}
)


@dataclass(frozen=True, slots=True)
class _Entry:
    label: str
    tokens: tuple[str, ...]
    compact: str
    titled: bool  # staff: "Dr. Lee" carries a title


def _stem(word: str) -> str:
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
        return (
            word[:-1] if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "ls" else word
        )
    if len(word) > 4 and word.endswith("ed"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


_SYNONYM_GROUP: dict[str, int] = {
    _stem(word): i for i, group in enumerate(lx.SERVICE_SYNONYMS) for word in group
}


@lru_cache(maxsize=512)
def _entries(names: tuple[str, ...], *, titles: bool) -> tuple[_Entry, ...]:
    entries = []
    for label in dict.fromkeys(names):
        text = _lower(unicodedata.normalize("NFKC", label).translate(_TYPOGRAPHY))
        text = re.sub(r"(?<=[^\W\d_])-(?=[^\W\d_])", "", text)
        text = re.sub(r"\bcheck\s+ups?\b", "checkup", text.replace("&", " and "))
        words = [w[:-2] if w.endswith("'s") else w for w in _WORD_RE.findall(text)]
        titled = bool(words) and words[0] in lx.STAFF_TITLES
        if titles:
            words = [w for w in words if w not in lx.STAFF_TITLES]
        tokens = tuple(w for w in words if w not in _NAME_STOPWORDS)
        if tokens:
            entries.append(_Entry(label, tokens, "".join(tokens), titled))
    return tuple(entries)


@lru_cache(maxsize=8192)
def _token_score(typed: str, known: str, *, fuzzy: bool) -> float:
    if typed == known:
        return 1.0
    typed_stem, known_stem = _stem(typed), _stem(known)
    if typed_stem == known_stem:
        return 1.0
    group = _SYNONYM_GROUP.get(typed_stem)
    if group is not None and group == _SYNONYM_GROUP.get(known_stem):
        return 0.9
    if not fuzzy or typed in lx.VOCABULARY or typed.isdigit():
        return 0.0
    limit = _typo_limit(typed, known)
    if limit and _osa(typed, known, limit) <= limit:
        return 0.8
    return 0.0


@dataclass(frozen=True, slots=True)
class _Fit:
    entry: _Entry
    full: bool
    matched: int
    quality: float
    positions: frozenset[int]
    first: int

    @property
    def rank(self) -> tuple[bool, int, float]:
        return (self.full, self.matched, round(self.quality, 3))


def _message_tokens(text: str) -> list[str]:
    return [m.group() for m in _WORD_RE.finditer(text)]


def _fit(entry: _Entry, words: list[str], *, fuzzy: bool) -> _Fit | None:
    matched, quality = 0, 0.0
    positions: set[int] = set()
    significant = False
    for token in entry.tokens:
        best, where = 0.0, -1
        for i, word in enumerate(words):
            score = _token_score(word, token, fuzzy=fuzzy)
            if score == 0.0 and i + 1 < len(words):
                score = _token_score(word + words[i + 1], token, fuzzy=False)
            if score > best:
                best, where = score, i
        if best:
            matched += 1
            quality += best
            positions.add(where)
            significant = significant or (
                token not in lx.GENERIC_SERVICE_WORDS and not token.isdigit()
            )
    if len(entry.tokens) > 1 and matched < len(entry.tokens):
        for i, word in enumerate(words):
            if _token_score(word, entry.compact, fuzzy=fuzzy):
                matched, quality = len(entry.tokens), float(len(entry.tokens))
                positions, significant = {i}, True
                break
    if not matched or not (significant or matched == len(entry.tokens)):
        return None
    return _Fit(
        entry, matched == len(entry.tokens), matched, quality, frozenset(positions), min(positions)
    )


def _choose(fits: list[_Fit]) -> tuple[str | None, tuple[str, ...]]:
    if not fits:
        return None, ()
    fits = sorted(fits, key=lambda f: (f.rank, -f.first), reverse=True)
    top = fits[0]
    tied = [f for f in fits if f.rank == top.rank]
    separate = [f for f in fits[1:] if f.rank != top.rank and not f.positions <= top.positions]
    if len(tied) > 1 or separate:
        chosen = sorted([*tied, *separate], key=lambda f: f.first)
        return None, tuple(dict.fromkeys(f.entry.label for f in chosen))
    return top.entry.label, tuple(dict.fromkeys(f.entry.label for f in fits))


def _match_services(text: str, services: tuple[_Entry, ...]) -> tuple[str | None, tuple[str, ...]]:
    words = _message_tokens(text)
    fits = [fit for entry in services if (fit := _fit(entry, words, fuzzy=True))]
    return _choose(fits)


_STAFF_CUES = frozenset(
    {"with", "see", "by", "prefer", "seeing", "want", "for", "ask", "book", *lx.STAFF_TITLES}
)


def _staff_fit(entry: _Entry, words: list[str]) -> _Fit | None:
    matched, quality = 0, 0.0
    positions: set[int] = set()
    for token in entry.tokens:
        for i, word in enumerate(words):
            score = 1.0 if word == token else 0.0
            if not score and word not in lx.VOCABULARY and len(token) >= 5:
                score = 0.8 if _osa(word, token, 1) <= 1 else 0.0
            if not score:
                continue
            before = words[i - 1] if i else ""
            beside = {words[j] for j in (i - 1, i + 1) if 0 <= j < len(words)}
            paired = bool(beside & (set(entry.tokens) - {word}))  # "Will Turner"
            # "May" or "Will" is a person only with a cue: "with May", "Dr. Will".
            if (token in lx.VOCABULARY or len(token) < 3) and not (before in _STAFF_CUES or paired):
                continue
            if before in lx.STAFF_TITLES and entry.titled:
                score += 0.5
            matched += 1
            quality += score
            positions.add(i)
            break
    if not matched:
        return None
    full = matched == len(entry.tokens)
    return _Fit(entry, full, matched, quality, frozenset(positions), min(positions))


def _match_staff(text: str, staff: tuple[_Entry, ...]) -> tuple[str | None, tuple[str, ...]]:
    words = _message_tokens(text)
    return _choose([fit for entry in staff if (fit := _staff_fit(entry, words))])


# ---------------------------------------------------------------------------
# Intents

_EARLIEST = re.compile(
    r"\b(?:earliest|soonest|asap|as\s+soon\s+as\s+(?:possible|you\s+can)|next\s+(?:available|opening|free)|"
    r"first\s+(?:available|opening|free)|as\s+early\s+as\s+possible|nearest\s+(?:available|slot|time))\b"
)
_NEGATION_BEFORE_RE = re.compile(
    r"(?:\bdon't|\bdo\s+not|\bdoesn't|\bdid\s+not|\bdidn't|\bnot|\bno\s+need\s+to|\bnever|\bwon't|"
    r"\bwouldn't|\bwithout|\bno\s+longer)\s+(?:\w+\s+){0,2}$"
)


def _compile(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


_START = r"^[\s\W]*"
_INTENT_RULES: tuple[tuple[Intent, re.Pattern[str], bool], ...] = (
    (
        Intent.POLICY,
        _compile(
            r"\b(?:cancell?ation|refund|late|no[\s-]?show|deposit|reschedul\w*|booking)\s+(?:policy|policies|fees?|charges?)\b",
            r"\bpolic(?:y|ies)\b",
            r"\bwhat\s+(?:happens|if)\s+(?:if\s+)?i(?:'m|\s+am)?\s+(?:cancel|miss|late|don't\s+show|no[\s-]?show)",
            r"\bis\s+there\s+a\s+(?:fee|charge)\s+(?:to|for|if)\b",
        ),
        False,
    ),
    (
        Intent.WAITLIST,
        _compile(
            r"\bwaitlist\b",
            r"\bcancell?ation\s+list\b",
            r"\bstand\s*by\b",
            r"\b(?:put|add)\s+me\s+(?:on|to|in)\s+(?:the|a|your)\s+list\b",
            r"\b(?:let\s+me\s+know|tell\s+me|notify\s+me|text\s+me|call\s+me|email\s+me|message\s+me|ping\s+me|"
            r"contact\s+me|alert\s+me)\b.{0,40}?\b(?:opens?\s+up|becomes?\s+(?:available|free)|"
            r"cancell?ation|cancels|frees?\s+up|comes?\s+up|(?:is|are)\s+(?:available|free))",
            r"\bif\s+(?:something|anything|a\s+slot|a\s+spot|someone)\s+(?:opens|comes\s+up|frees\s+up|cancels)",
        ),
        True,
    ),
    (
        Intent.HUMAN,
        _compile(
            r"\b(?:talk|speak|chat)\s+(?:to|with)\s+(?:a|an|the|some|your|real|actual|live|\s)*"
            r"(?:person|human|someone|somebody|receptionist|agent|representative|rep|staff|manager|owner|"
            r"operator|front\s+desk|people|doctor|dentist|dr\.?(?:\s+\w+)?|anyone|anybody)\b",
            r"\b(?:real|actual|live)\s+(?:person|human|people)\b",
            r"\bhuman\b",
            r"\b(?:operator|receptionist|representative)\b",
            r"\b(?:call|ring)\s+me\s+back\b",
            r"\b(?:can|could)\s+(?:someone|somebody|a\s+person)\s+(?:call|ring|contact)\s+me\b",
            r"\btransfer\s+me\b",
        ),
        True,
    ),
    (
        Intent.CANCEL,
        _compile(
            r"\bcancel(?:l?ed|l?ing|s)?\b(?!\s+(?:list|policy|fee))",
            r"\bcancellation\b(?!\s+(?:list|policy|fee|fees|charge))",
            r"\bcall\s+(?:it|my\s+\w+|the\s+\w+)\s+off\b|\bcall\s+off\b",
            r"\b(?:can't|cannot|won't\s+be\s+able\s+to|unable\s+to|not\s+able\s+to)\s+(?:make|come\s+to|attend|keep)\s+"
            r"(?:my|the|our)\s+(?:appointment|booking|reservation|visit|session)",
            r"\b(?:drop|scrap|delete)\s+(?:my|the)\s+(?:appointment|booking|reservation)\b",
        ),
        True,
    ),
    (
        Intent.RESCHEDULE,
        _compile(
            r"\bre(?:schedul\w*|book\w*|arrange)\b",
            r"\bpostpone\w*\b",
            r"\b(?:move|change|shift|switch|push|bring|swap)\s+(?:my|the|our)\s+(?:\w+\s+)?"
            r"(?:appointment|appt|booking|reservation|visit|session|slot)s?\b",
            r"\b(?:move|shift|swap)\s+my\b(?!\s+(?:mind|name|number|phone|email))",
            r"\bpush\s+(?:it|that)\s+back\b|\bbring\s+(?:it|that)\s+forward\b",
            r"\b(?:different|another|new|other)\s+(?:time|day|date)\s+for\s+my\b",
        ),
        True,
    ),
    (
        Intent.FIND_MY_APPOINTMENTS,
        _compile(
            r"\bwhen(?:'s|\s+is|\s+was)?\s+my\s+(?:next\s+)?(?:appointment|booking|appt|visit|reservation)",
            r"\bwhat\s+time(?:'s|\s+is)\s+my\b",
            r"\b(?:do|did)\s+i\s+(?:still\s+)?have\s+(?:an?\s+|any\s+)?(?:appointment|booking|reservation)s?\b",
            r"\b(?:check|look\s+up|find|see|view|show(?:\s+me)?|list|what\s+are|what's|confirm|review)\s+"
            r"(?:on\s+)?my\s+(?:\w+\s+)?(?:appointments?|bookings?|reservations?|appts?)\b",
            r"\bmy\s+(?:upcoming|existing|current|next|future)\s+(?:appointments?|bookings?|reservations?|visits?)\b",
            r"\b(?:upcoming|existing)\s+(?:appointments?|bookings?)\b",
            r"\bwhat\s+(?:did|have)\s+i\s+book",
            r"\b(?:am\s+i|i'm|i\s+am)\s+(?:already\s+|still\s+)?(?:booked|scheduled|down|on\s+the\s+books)\b",
            r"\bis\s+my\s+(?:appointment|booking)\s+(?:still|confirmed|on)\b",
        ),
        False,
    ),
    (
        Intent.BOOK,
        _compile(
            r"\b(?:book|schedule|reserve)\b(?!\s+(?:it|that|this)\b)",
            r"\b(?:make|get|set\s+up|need|want|like|have|grab|request|arrange|take)\s+"
            r"(?:an?\s+|another\s+|a\s+new\s+|my\s+|some\s+)?(?:appointment|booking|reservation|visit|session|slot|spot)\b",
            r"\b(?:new|another|an)\s+(?:appointment|booking|reservation)\b",
            r"\b(?:come\s+in|fit\s+me\s+in|squeeze\s+me\s+in|get\s+me\s+in|pop\s+in|drop\s+in|stop\s+by)\b",
            r"\bsign\s+(?:me\s+)?up\b",
            r"\b(?:can|could|will)\s+(?:you|someone|somebody|the\s+\w+|dr\.?\s+\w+)\s+see\s+(?:me|us)\b",
        ),
        True,
    ),
    (
        Intent.HOURS,
        _compile(
            r"\b(?:are|is)\s+(?:you|u|y'all|the\s+\w+|it|your\s+\w+)(?:\s+(?:guys|all|folks))?\s+(?:still\s+)?(?:open|closed)\b",
            r"\b(?:you|u)\s+(?:guys\s+)?(?:open|closed)\b",
            r"\bwhat\s+time\s+(?:do|does|are|will)\s+(?:you|it|the\s+\w+)\s+(?:\w+\s+)?(?:open|close)",
            r"\bwhen\s+(?:do|does|are|will)\s+(?:you|it|the\s+\w+)\s+(?:\w+\s+)?(?:open|close)",
            r"\b(?:opening|business|office|working|operating|open|clinic|shop|store)\s+(?:hours|times)\b",
            r"\b(?:your|the)\s+hours\b",
            r"(?<![0-9]\s)(?<![0-9])\bhours\b(?!\s+(?:later|from|ago|long))",
            r"\b(?:closing|opening)\s+time\b",
            r"\bopen\s+(?:on|at|until|till|late|early|today|tomorrow|this|next|every|sundays?|saturdays?|weekends?)\b",
            r"\bclosed\s+(?:on|today|tomorrow|this|next|for|sundays?|saturdays?|weekends?)\b",
        ),
        False,
    ),
    (
        Intent.LOCATION,
        _compile(
            r"\bwhere\s+(?:are\s+you|is\s+(?:the|your)\s+\w+|(?:'s|is)\s+it|are\s+y'all|do\s+i\s+go)\b",
            r"\bwhere's\s+(?:the|your)\s+\w+",
            r"\b(?:your|the)\s+(?:address|location)\b",
            r"\baddress\b",
            r"\b(?:directions|located|parking)\b",
            r"\bhow\s+do\s+i\s+get\s+there\b",
        ),
        False,
    ),
    (
        Intent.PRICE,
        _compile(
            r"\bhow\s+much\b",
            r"\b(?:price|prices|pricing|priced|cost|costs|costing|fee|fees|charge|charges|rate|rates)\b",
            r"\bwhat\s+do\s+you\s+charge\b",
            r"\$",
            r"\b(?:expensive|cheap|affordable|afford)\b",
        ),
        False,
    ),
    (
        Intent.SERVICES,
        _compile(
            r"\bwhat\s+(?:services|treatments|procedures|kinds?\s+of|types?\s+of|sort\s+of)\b",
            r"\bwhat\s+(?:else\s+)?(?:do|can|does)\s+(?:you|the\s+\w+)\s+(?:offer|do|provide)\b",
            r"\bwhat\s+can\s+i\s+(?:book|get|have)\b",
            r"\b(?:list|menu)\s+of\s+(?:services|treatments)\b",
            r"\b(?:your|the|all|which)\s+(?:services|treatments|menu)\b",
            r"\bservices\b",
            r"\bdo\s+you\s+(?:do|offer|provide|perform)\b",
            r"\bhow\s+long\s+(?:does|do|will|is|are|would)\b",
        ),
        False,
    ),
    (
        Intent.AVAILABILITY,
        _compile(
            r"\bavailab(?:le|ility|ilities)\b",
            r"\b(?:any|what|which|other|more|free|open|some)\s+(?:\w+\s+)?(?:slots?|spots?|times|openings?|appointments|days|dates)\b",
            r"\bopenings?\b",
            r"\bwhat\s+(?:do|else\s+do|have|would|else\s+have)\s+you\s+(?:have|got)\b",
            r"\bwhat(?:'s|\s+is)\s+(?:available|free|open|left)\b",
            r"\b(?:do|would)\s+you\s+have\s+(?:anything|any|something|time|room|space|an?\s+opening|a\s+slot|a\s+spot)",
            r"\b(?:is|are)\s+there\s+(?:anything|any|something|room|space|an?\s+opening|a\s+slot|a\s+spot)",
            rf"{_START}(?:anything|any)\b(?!\s+else\s+i)",
            r"\bwhen\s+(?:can|could)\s+(?:i|you|we)\b",
            r"\bwhen(?:'s|\s+is)\s+(?:the\s+)?(?:next|earliest|first|soonest)\b",
            r"\b(?:earliest|soonest|next\s+available|first\s+available)\b",
            r"\b(?:are|is)\s+(?:you|\w+|dr\.?\s+\w+)\s+free\b",
            r"\b(?:i'm|i\s+am)\s+free\b",
            r"\b(?:anything|something)\s+(?:else|later|earlier|sooner|on|in|for|at|next|this|after|before)\b",
            r"\bwhat\s+(?:times|days)\b",
            r"\bwhen\s+(?:are|is)\s+(?:you|\w+|dr\.?\s+\w+)\s+(?:free|around|in|working)\b",
            r"\bwho(?:'s|\s+is)\s+(?:free|available)\b",
            r"\b(?:is|are|would|will)\b[^.?!]{0,40}\b(?:possible|doable)\b",
            r"\b(?:is|would|does)\b[^.?!]{0,30}\b(?:ok|okay|fine|good|work)\s*\?",
        ),
        False,
    ),
    (
        Intent.GREETING,
        _compile(
            rf"{_START}(?:hi|hello|hey|heya|hiya|howdy|greetings|yo|hallo|hola|good\s*(?:morning|afternoon|evening|day))\b",
        ),
        False,
    ),
    (
        Intent.THANKS,
        _compile(
            r"\b(?:thanks|thank\s+you|thank\s+u|cheers|much\s+appreciated|many\s+thanks|appreciate\s+(?:it|that|you|your\s+help))\b",
        ),
        False,
    ),
    (
        Intent.GOODBYE,
        _compile(
            r"\b(?:bye|goodbye|good\s+bye|bye\s+bye|see\s+(?:you|ya)|cya|take\s+care|farewell|good\s*night)\b",
            r"\bhave\s+a\s+(?:good|nice|great|lovely|wonderful)\s+(?:day|one|evening|night|weekend|afternoon|morning)\b",
            r"\b(?:that's|that\s+is|that'll\s+be|that\s+will\s+be)\s+all\b",
            r"\bnothing\s+else\b",
            r"\btalk\s+(?:to\s+you\s+)?(?:later|soon)\b",
        ),
        False,
    ),
)

_NO_RE = _compile(
    rf"{_START}(?:no|nope|nah|nay|negative|not\s+really|wrong|incorrect|never\s*mind)\b(?!\s+(?:problem|worries|rush|prob|biggie|preference|idea|earlier|later|sooner|more|less|longer|need|one))",
    r"\bnot\s+(?:that|this)(?:\s+one)?\b",
    r"\bsomething\s+else\b",
    r"\bnone\s+of\s+(?:those|them|these|the\s+above)\b",
    r"\bneither\b",
    r"\b(?:doesn't|does\s+not|won't|will\s+not|wouldn't|can't|cannot|doesnt)\s+(?:really\s+)?(?:work|suit|do)\b",
    r"\b(?:can't|cannot|couldn't)\s+(?:make|do)\s+(?:it|that|those|this|then)\b",
    r"\b(?:that's|that\s+is|it's)\s+(?:not\s+right|wrong|incorrect|not\s+correct|not\s+it)\b",
    r"\bi\s+don't\s+think\s+so\b",
    r"\bno\s+thank(?:s|\s+you)\b",
    r"\bno\s+way\b",
    # Last, so "not that one" is blanked whole and does not leave a "that one" yes.
    r"^[\s\W]*(?:n|not(?!\s+(?:sure|yet|bad|a\s+problem)))\b",
)
_YES_RE = _compile(
    rf"{_START}(?:yes|yeah|yep|yup|yes\s+please|sure|okay|alright|all\s+right|right(?!\s+now)|correct|exactly|absolutely|"
    r"definitely|certainly|of\s+course|perfect|great|good|fine|cool|awesome|excellent|lovely|brilliant|wonderful|"
    r"affirmative|confirm(?:ed)?|y|yass?|ja|si|sí|oui|👍|✅)\b(?!\s+(?:morning|afternoon|evening|night|day|question|idea))",
    rf"{_START}(?:👍|✅|👌)",
    r"\b(?:that|it|this)\s+(?:works|would\s+work|is\s+(?:fine|good|great|perfect|correct|right))\b",
    r"\bworks\s+(?:for\s+me|great|fine|perfect)\b",
    r"(?<!what\s)(?<!which\s)(?<!when\s)(?<!how\s)\bworks\b(?!\s+for\s+you)",
    r"\bsounds\s+(?:good|great|perfect|fine|ok|okay|lovely|like\s+a\s+plan)\b",
    r"\bbook\s+(?:it|that|this)(?:\s+one)?\b",
    r"\b(?:go\s+ahead|please\s+do|do\s+it|let's\s+do\s+(?:it|that)|i'll\s+take\s+(?:it|that|this)|that\s+one)\b",
    r"\b(?:that's|that\s+is|it's)\s+(?:right|correct|fine|perfect|great|good|it)\b",
    r"\b(?:yes|yeah|yep|yup)\b",
    r"\bconfirm(?:ed)?\b(?!\s+my)",
)
_CORRECTION_RE = _compile(
    r"\bactually\b",
    r"\binstead\b",
    r"\brather\b",
    r"\bi\s+meant?\b",
    r"\b(?:change|switch|move)\s+(?:it|that|this)?\s*to\b",
    r"\bmake\s+(?:it|that)\b",
    r"\bcorrection\b",
    r"\bscratch\s+that\b",
    r"\bon\s+second\s+thought\b",
    r"\b(?:how|what)\s+about\b",
    r"\blet's\s+(?:do|go\s+with|say|try)\b",
    r"\b(?:wait|sorry),",
    r"\b(?:no|oh)\s+wait\b|^\W*wait\b",
    r"[,.!?]\s*no\s*[,.!]",
)


def _clean_cue(text: str, m: re.Match[str]) -> bool:
    return not _NEGATION_BEFORE_RE.search(text[max(0, m.start() - 30) : m.start()])


_DESIRE_RE = re.compile(
    r"\b(?:i'd\s+like|i\s+would\s+like|i\s+want|i\s+need|i'm\s+looking\s+for|looking\s+for|i'm\s+after|"
    r"(?:can|could|may)\s+i\s+(?:get|have|do|grab|come)|interested\s+in|i'll\s+have|i'd\s+love|we\s+need|"
    r"we'd\s+like|(?:can|could)\s+(?:you|we)\s+(?:get|fit|squeeze)\s+me)\b"
    # "I want to change it" wants no new booking; "I want to book" does.
    r"(?!\s+to\s+(?!book|make|get|schedule|come|see|have|reserve|set|grab)\w)"
)
_NEW_BOOKING_RE = re.compile(
    r"\b(?:new|another)\s+(?:appointment|booking)|\bbook\s+(?:a|an|another)\b"
)
_STARTS_WITH_NO_RE = re.compile(rf"{_START}(?:no|nope|nah)\b")


def _blank(text: str, m: re.Match[str]) -> str:
    return text[: m.start()] + " " * (m.end() - m.start()) + text[m.end() :]


def _intents(
    work: str, *, has_service: bool, has_when: bool, has_detail: bool
) -> frozenset[Intent]:
    text = work.replace(_HOLE, " ")
    found: set[Intent] = set()
    for intent, regex, negatable in _INTENT_RULES:
        for m in regex.finditer(text):
            if negatable and not _clean_cue(text, m):
                continue
            found.add(intent)
            if intent in (Intent.POLICY, Intent.WAITLIST):
                # "cancellation policy" asks a question; it cancels nothing.
                text = _blank(text, m)
            break
    desire = _DESIRE_RE.search(text)
    if desire and _clean_cue(text, desire) and (has_service or has_when):
        found.add(Intent.BOOK)
    if has_service and not has_when and re.search(r"\bdo\s+you\s+(?:have|do|offer)\b", text):
        found.add(Intent.SERVICES)
    managing = found & {Intent.CANCEL, Intent.RESCHEDULE, Intent.FIND_MY_APPOINTMENTS}
    if managing and not _NEW_BOOKING_RE.search(text):
        found.discard(Intent.BOOK)
    if Intent.RESCHEDULE in found and not re.search(r"\bcancel", text):
        found.discard(Intent.CANCEL)  # "can't make my appointment, can we move it"
    if Intent.HOURS in found and not re.search(r"\bavailab|\bslots?\b|\bopenings?\b", text):
        found.discard(Intent.AVAILABILITY)
    if Intent.LOCATION in found and not has_when:
        found.discard(Intent.AVAILABILITY)  # "is parking available?"

    no = _NO_RE.search(text)
    if no:
        found.add(Intent.NO)
        text = _blank(text, no)
    if any(_clean_cue(text, m) for m in _YES_RE.finditer(text)):
        found.add(Intent.YES)
    said_no_first = Intent.NO in found and _STARTS_WITH_NO_RE.match(work.replace(_HOLE, " "))
    if has_detail and (_CORRECTION_RE.search(text) or said_no_first):
        found.add(Intent.CORRECTION)
    return frozenset(found)
