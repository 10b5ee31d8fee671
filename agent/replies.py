"""How the offline assistant says things: dates, times, prices, lists and fixed sentences.

Replies are read out on the phone as well as shown in chat, so they are plain
sentences: no markdown, no tables, short lists ("1) ..., 2) ... or 3) ...").
Dates are always said with their weekday ("Thu Nov 26 at 2:00 PM").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation

DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# The parser's parts of the day, named back the way a person says them.
PART_NAMES: Mapping[tuple[time, time], str] = {
    (time(8), time(12)): "in the morning",
    (time(12), time(17)): "in the afternoon",
    (time(17), time(21)): "in the evening",
    (time(15), time(17)): "in the late afternoon",
}

CAPABILITIES = (
    "I can book, move or cancel appointments, put you on the waitlist, and answer "
    "questions about our services, prices, opening hours and address."
)


def clock(t: time) -> str:
    """"2:00 PM", "12:30 PM"."""
    hour = t.hour % 12 or 12
    return f"{hour}:{t.minute:02d} {'AM' if t.hour < 12 else 'PM'}"


def day(d: date) -> str:
    """"Thu Nov 26"."""
    return f"{d:%a %b} {d.day}"


def moment(local: datetime) -> str:
    """"Thu Nov 26 at 2:00 PM" (``local`` already in the business's zone)."""
    return f"{day(local.date())} at {clock(local.time())}"


def duration(minutes: int) -> str:
    if minutes >= 60 and minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minutes"


def money(amount: object, symbol: str = "$") -> str:
    """"$120" for whole amounts, "$120.50" otherwise; empty when it is no amount."""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return ""
    if not value.is_finite():
        return ""
    if value == value.to_integral_value():
        return f"{symbol}{int(value):,}"
    return f"{symbol}{value:,.2f}"


def joined(items: Sequence[str], last: str = "and") -> str:
    """"a", "a and b", "a, b and c"."""
    items = [i for i in items if i]
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def numbered(items: Sequence[str]) -> str:
    """"1) a, 2) b or 3) c": short enough to read out, easy to answer with a number."""
    return joined([f"{n}) {item}" for n, item in enumerate(items, start=1)], "or")


def window(bounds: tuple[time, time]) -> str:
    """A time window as a phrase: "in the afternoon", "after 5:00 PM", "between 2 and 4"."""
    named = PART_NAMES.get(bounds)
    if named:
        return named
    start, end = bounds
    # "Anything later?" starts a window a minute after the last time offered.
    start = start.replace(minute=start.minute - start.minute % 5)
    if end >= time(21):
        return f"after {clock(start)}"
    if start <= time(8):
        return f"before {clock(end)}"
    return f"between {clock(start)} and {clock(end)}"


def days(first: date, last: date, today: date) -> str:
    """A date or a range of dates as a phrase, always with weekdays."""
    if first == last:
        if first == today:
            return f"today, {day(first)}"
        if (first - today).days == 1:
            return f"tomorrow, {day(first)}"
        return f"on {day(first)}"
    return f"between {day(first)} and {day(last)}"


def hours_of_day(spans: Iterable[tuple[time, time]]) -> str:
    """"9:00 AM to 12:00 PM and 1:00 PM to 5:00 PM"."""
    return joined([f"{clock(a)} to {clock(b)}" for a, b in spans])


def week_hours(hours: Mapping[str, Sequence[tuple[time, time]]]) -> str:
    """Opening hours as one sentence, days with the same hours grouped.

    "We're open Monday to Friday, 9:00 AM to 5:00 PM; Sunday, 9:00 AM to 12:00 PM."
    """
    groups: list[tuple[int, int, tuple[tuple[time, time], ...]]] = []
    for index, key in enumerate(DAY_KEYS):
        spans = tuple((a, b) for a, b in hours.get(key, ()))
        if not spans:
            continue
        if groups and groups[-1][1] == index - 1 and groups[-1][2] == spans:
            groups[-1] = (groups[-1][0], index, spans)
        else:
            groups.append((index, index, spans))
    if not groups:
        return ""
    parts = []
    for first, last, spans in groups:
        if first == last:
            label = DAY_NAMES[first]
        elif last == first + 1:
            label = f"{DAY_NAMES[first]} and {DAY_NAMES[last]}"
        else:
            label = f"{DAY_NAMES[first]} to {DAY_NAMES[last]}"
        parts.append(f"{label}, {hours_of_day(spans)}")
    return f"We're open {'; '.join(parts)}."


def phone_tail(phone: str) -> str:
    """The last four digits, enough for a customer to recognise their number."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    return digits[-4:]


def sentence(text: str) -> str:
    """A complete sentence: capitalised, ending in punctuation."""
    text = " ".join(text.split())
    if not text:
        return text
    text = text[0].upper() + text[1:]
    if text[-1] not in ".?!" and not text.endswith("(yes/no)"):
        text += "."
    return text
