"""The owners' calendar and the forms the dashboard books and moves appointments with.

Everything here is shown in the business's time zone: the calendar lays
appointments out in local wall-clock time, and the forms read a local date and
time and turn them into an aware datetime before calling ``booking.services``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import uuid4
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from booking import ics
from booking.models import (
    Appointment,
    BusinessProfile,
    Service,
    StaffMember,
    WorkingHours,
    new_calendar_token,
)
from booking.selectors import (
    EARLIEST_YEAR,
    LATEST_YEAR,
    appointments_between,
    business_zone,
    profile_get,
    services_list,
    staff_list,
)
from tenants.context import current_tenant, tenant_atomic
from tenants.dashboard import dashboard_allows, dashboard_site

# The day view's grid: one row per quarter hour.
ROW_MINUTES = 15
# Shown when nobody works that day and nothing is booked.
DEFAULT_DAY = (9 * 60, 17 * 60)
# A feed lists this far back (and as far ahead as customers may book).
FEED_PAST = timedelta(days=30)
FEED_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


# --- local date and time ------------------------------------------------------------


def local_datetime(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The aware instant of a wall-clock time at the business; ValueError if it never happens.

    On the day clocks go forward a span of local times does not exist; an
    ambiguous time (clocks going back) is read as its first occurrence.
    """
    if not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
        raise ValueError("That date is out of range.")
    naive = datetime.combine(day, at.replace(second=0, microsecond=0))
    aware = naive.replace(tzinfo=tz)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        raise ValueError(f"{at:%H:%M} does not exist on {day:%Y-%m-%d} (the clocks change).")
    return aware


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The local day as an aware [start, end), 23 or 25 hours long on DST days."""
    return (
        datetime.combine(day, time(), tz),
        datetime.combine(day + timedelta(days=1), time(), tz),
    )


def business_today(tz: ZoneInfo) -> date:
    return timezone.now().astimezone(tz).date()


def parse_day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        return None
    return day if EARLIEST_YEAR <= day.year <= LATEST_YEAR else None


# --- forms --------------------------------------------------------------------------


class LocalStartMixin(forms.Form):
    """A local date and time field pair, combined into ``cleaned_data["start"]``."""

    date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    time = forms.TimeField(widget=forms.TimeInput(attrs={"type": "time", "step": 300}))

    def __init__(self, *args: Any, tz: ZoneInfo, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tz = tz
        zone = tz.key
        self.fields["date"].help_text = f"Local date ({zone})."
        self.fields["time"].help_text = f"Local time ({zone})."

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        day, at = cleaned.get("date"), cleaned.get("time")
        if day is not None and at is not None:
            try:
                cleaned["start"] = local_datetime(day, at, self.tz)
            except ValueError as exc:
                self.add_error("time", str(exc))
        return cleaned


class AppointmentBookForm(LocalStartMixin):
    field_order = ["service", "staff", "date", "time", "name", "phone", "email", "notes"]
    required_css_class = "required"

    service = forms.ModelChoiceField(queryset=Service.objects.none())
    staff = forms.ModelChoiceField(
        queryset=StaffMember.objects.none(), required=False, empty_label="Anyone available",
        help_text="Leave on “Anyone available” to give it to whoever is free.",
    )
    name = forms.CharField(label="Customer name", max_length=120)
    phone = forms.CharField(
        label="Customer phone", max_length=32,
        help_text="A customer is found by phone number; a new number adds a customer.",
    )
    email = forms.EmailField(label="Customer email", required=False)
    notes = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )
    # Sent back with the form, so a double submit books once.
    key = forms.RegexField(regex=r"^[0-9a-f]{32}$", widget=forms.HiddenInput)

    def __init__(self, *args: Any, tz: ZoneInfo, **kwargs: Any) -> None:
        super().__init__(*args, tz=tz, **kwargs)
        self.fields["key"].initial = uuid4().hex
        service_field = self.fields["service"]
        staff_field = self.fields["staff"]
        assert isinstance(service_field, forms.ModelChoiceField)
        assert isinstance(staff_field, forms.ModelChoiceField)
        service_field.queryset = services_list()
        staff_field.queryset = staff_list()


class AppointmentRescheduleForm(LocalStartMixin):
    required_css_class = "required"
    staff = forms.ModelChoiceField(
        queryset=StaffMember.objects.none(), required=False,
        empty_label="Same staff member if free, else anyone",
    )

    def __init__(self, *args: Any, tz: ZoneInfo, service_id: int, **kwargs: Any) -> None:
        super().__init__(*args, tz=tz, **kwargs)
        staff_field = self.fields["staff"]
        assert isinstance(staff_field, forms.ModelChoiceField)
        staff_field.queryset = staff_list(service_id=service_id)


# --- the calendar ---------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One appointment as the calendar shows it, in local time."""

    appointment: Appointment
    start: datetime
    end: datetime
    url: str

    @property
    def times(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass
class Cell:
    """A day-view cell: a run of rows for one staff member, empty or with appointments."""

    rows: int = 1
    entries: list[Entry] = field(default_factory=list)
    working: bool = False


@dataclass
class Row:
    label: str
    hour_start: bool
    cells: list[Cell | None]  # None: covered by a cell above (rowspan)


@dataclass
class DayColumn:
    day: date
    entries: list[Entry]


@dataclass
class WeekRow:
    staff: StaffMember
    days: list[DayColumn]


def _entries(appointments: list[Appointment], tz: ZoneInfo) -> list[Entry]:
    return [
        Entry(
            appointment=a,
            start=a.start.astimezone(tz),
            end=a.end.astimezone(tz),
            url=reverse(f"{dashboard_site.name}:booking_appointment_change", args=[a.pk]),
        )
        for a in appointments
    ]


def _minute_of_day(moment: datetime, day: date) -> int:
    # Appointments running over midnight are clipped to the day shown.
    if moment.date() < day:
        return 0
    if moment.date() > day:
        return 24 * 60
    return moment.hour * 60 + moment.minute


def _working_minutes(hours: list[WorkingHours]) -> list[tuple[int, int]]:
    return [(h.start.hour * 60 + h.start.minute, h.end.hour * 60 + h.end.minute) for h in hours]


def day_grid(
    *, day: date, staff: list[StaffMember], entries: list[Entry],
    hours: dict[int, list[tuple[int, int]]],
) -> list[Row]:
    """Rows of ROW_MINUTES for the day, one column per staff member.

    Appointments of one staff member that overlap (a cancelled one under a new
    booking, when cancelled ones are shown) share one cell, so no cell ever
    spans into another.
    """
    spans: dict[int, list[tuple[int, int, Entry]]] = {s.pk: [] for s in staff}
    for entry in entries:
        if entry.appointment.staff_id in spans:
            first = _minute_of_day(entry.start, day)
            last = max(_minute_of_day(entry.end, day), first + 1)
            spans[entry.appointment.staff_id].append((first, last, entry))

    bounds = [m for span in spans.values() for first, last, _ in span for m in (first, last)]
    bounds += [m for s in staff for pair in hours.get(s.pk, []) for m in pair]
    if bounds:
        day_first = min(bounds) // 60 * 60
        day_last = min(-(-max(bounds) // 60) * 60, 24 * 60)
    else:
        day_first, day_last = DEFAULT_DAY
    count = max((day_last - day_first) // ROW_MINUTES, 1)

    def row_of(minute: int) -> int:
        return min(max((minute - day_first) // ROW_MINUTES, 0), count - 1)

    columns: list[list[Cell | None]] = []
    for member in staff:
        column: list[Cell | None] = []
        for index in range(count):
            minute = day_first + index * ROW_MINUTES
            working = any(a <= minute < b for a, b in hours.get(member.pk, []))
            column.append(Cell(working=working))
        clusters: list[tuple[int, int, list[Entry]]] = []
        for first, last, entry in sorted(spans[member.pk], key=lambda s: (s[0], s[1])):
            top, bottom = row_of(first), max(row_of(last - 1) + 1, row_of(first) + 1)
            if clusters and top < clusters[-1][1]:
                start, end, members = clusters[-1]
                clusters[-1] = (start, max(end, bottom), [*members, entry])
            else:
                clusters.append((top, bottom, [entry]))
        for top, bottom, members in clusters:
            column[top] = Cell(rows=bottom - top, entries=members)
            for covered in range(top + 1, bottom):
                column[covered] = None
        columns.append(column)

    rows = []
    for index in range(count):
        minute = day_first + index * ROW_MINUTES
        rows.append(
            Row(
                label=f"{minute // 60:02d}:{minute % 60:02d}",
                hour_start=minute % 60 == 0,
                cells=[column[index] for column in columns],
            )
        )
    return rows


def _appointments(
    start: datetime, end: datetime, *, staff_id: int | None, cancelled: bool
) -> list[Appointment]:
    appointments = appointments_between(start, end)
    if staff_id is not None:
        appointments = appointments.filter(staff_id=staff_id)
    if not cancelled:
        appointments = appointments.exclude(status=Appointment.Status.CANCELLED)
    return list(appointments)


def _staff_shown(appointments: list[Appointment], staff_id: int | None) -> list[StaffMember]:
    """Active staff, plus anyone (say, a former employee) with appointments in view."""
    booked = {a.staff_id for a in appointments}
    members = [
        s for s in StaffMember.objects.order_by("name", "pk")
        if s.active or s.pk in booked
    ]
    if staff_id is not None:
        members = [s for s in members if s.pk == staff_id]
    return members


@dataclass(frozen=True)
class DayLink:
    day: date
    url: str


def _heading(mode: str, days: list[date]) -> str:
    if mode == "day":
        return f"{days[0]:%A} {days[0].day} {days[0]:%B %Y}"
    first, last = days[0], days[-1]
    if first.month == last.month:
        return f"Week of {first.day}-{last.day} {last:%B %Y}"
    if first.year == last.year:
        return f"Week of {first.day} {first:%B} - {last.day} {last:%B %Y}"
    return f"Week of {first.day} {first:%B %Y} - {last.day} {last:%B %Y}"


def calendar_view(request: HttpRequest) -> HttpResponse:
    """``/dashboard/calendar/?date=YYYY-MM-DD&view=day|week&staff=ID``: appointments by staff."""
    if not dashboard_allows(request, "view"):
        raise PermissionDenied
    request.current_app = dashboard_site.name
    tz = business_zone()
    today = business_today(tz)
    day = parse_day(request.GET.get("date")) or today
    mode = "week" if request.GET.get("view") == "week" else "day"
    cancelled = request.GET.get("cancelled") == "1"
    staff_param = request.GET.get("staff", "")
    staff_id = int(staff_param) if staff_param.isdigit() else None

    if mode == "week":
        first = day - timedelta(days=day.weekday())
        days = [first + timedelta(days=i) for i in range(7)]
        step = timedelta(days=7)
    else:
        first, days, step = day, [day], timedelta(days=1)
    span_start, _ = day_bounds(days[0], tz)
    _, span_end = day_bounds(days[-1], tz)
    appointments = _appointments(span_start, span_end, staff_id=staff_id, cancelled=cancelled)
    entries = _entries(appointments, tz)
    staff = _staff_shown(appointments, staff_id)

    base = reverse(f"{dashboard_site.name}:calendar")

    def link(to: date, view: str = mode) -> str:
        query: dict[str, str] = {"date": to.isoformat(), "view": view}
        if staff_id is not None:
            query["staff"] = str(staff_id)
        if cancelled:
            query["cancelled"] = "1"
        return f"{base}?{urlencode(query)}"

    book_query = {"date": day.isoformat()}
    if staff_id is not None:
        book_query["staff"] = str(staff_id)
    context: dict[str, Any] = {
        **dashboard_site.each_context(request),
        "title": "Calendar",
        "heading": _heading(mode, days),
        "mode": mode,
        "day": day,
        "today": today,
        "showing_today": today in days,
        "zone": tz.key,
        "staff": staff,
        "staff_choices": [s for s in StaffMember.objects.order_by("name", "pk") if s.active],
        "staff_id": staff_id,
        "cancelled": cancelled,
        "prev_url": link(first - step),
        "next_url": link(first + step),
        "today_url": link(today),
        "day_url": link(day, "day"),
        "week_url": link(day, "week"),
        "day_links": [DayLink(day=d, url=link(d, "day")) for d in days],
        "entry_count": len(entries),
        "feeds_url": reverse(f"{dashboard_site.name}:calendar_feeds"),
        "can_book": dashboard_allows(request, "add"),
        "book_url": reverse(f"{dashboard_site.name}:booking_appointment_add")
        + f"?{urlencode(book_query)}",
    }
    if mode == "day":
        hours: dict[int, list[tuple[int, int]]] = {}
        for h in WorkingHours.objects.filter(
            staff__in=staff, weekday=day.weekday()
        ).order_by("start"):
            hours.setdefault(h.staff_id, []).extend(_working_minutes([h]))
        context["rows"] = day_grid(day=day, staff=staff, entries=entries, hours=hours)
    else:
        by_cell: dict[tuple[int, date], list[Entry]] = {}
        for entry in entries:
            by_cell.setdefault((entry.appointment.staff_id, entry.start.date()), []).append(entry)
        context["week"] = [
            WeekRow(
                staff=member,
                days=[DayColumn(day=d, entries=by_cell.get((member.pk, d), [])) for d in days],
            )
            for member in staff
        ]
    return TemplateResponse(request, "dashboard/booking/calendar.html", context)


# --- calendar feeds ---------------------------------------------------------------------


def feed_path(token: str) -> str:
    return reverse("booking_calendar_feed", kwargs={"slug": current_tenant().slug, "token": token})


def feed_url(token: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}{feed_path(token)}"


def calendar_token_set(*, staff_id: int | None, enabled: bool) -> str:
    """Give the business's (``staff_id=None``) or a member's feed a new secret, or turn it off.

    Either way the old address stops working at once. Returns the new token
    ("" when turned off).
    """
    token = new_calendar_token() if enabled else ""
    with tenant_atomic():
        if staff_id is None:
            profile = profile_get()
            BusinessProfile.objects.filter(pk=profile.pk).update(calendar_token=token)
        elif not StaffMember.objects.filter(pk=staff_id).update(calendar_token=token):
            raise Http404
    return token


def feed_appointments(
    *, staff_id: int | None, profile: BusinessProfile, now: datetime
) -> QuerySet[Appointment]:
    """What a feed lists: appointments not cancelled, from a month back to the booking window."""
    appointments = appointments_between(
        now - FEED_PAST, now + timedelta(days=profile.max_days_ahead + 1)
    ).exclude(status=Appointment.Status.CANCELLED)
    if staff_id is not None:
        appointments = appointments.filter(staff_id=staff_id)
    return appointments


def calendar_feed(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    """``/b/<slug>/calendar/<token>.ics``: a subscribable feed for the business or one member.

    The token is the only credential (calendar apps cannot log in), so every
    miss, a turned-off feed and another business's token alike, is a plain 404.
    """
    if request.method not in {"GET", "HEAD"}:
        return HttpResponseNotAllowed(["GET", "HEAD"])
    if not FEED_TOKEN.match(token):
        raise Http404
    profile = profile_get()
    staff: StaffMember | None = None
    if profile.calendar_token and constant_time_compare(profile.calendar_token, token):
        name = profile.display_name
    else:
        staff = StaffMember.objects.filter(calendar_token=token).first()
        if staff is None:
            raise Http404
        name = f"{profile.display_name}: {staff.name}"
    now = timezone.now()
    appointments = feed_appointments(
        staff_id=staff.pk if staff is not None else None, profile=profile, now=now
    )
    body = ics.calendar_feed(appointments, name=name, audience="business", now=now)
    response = HttpResponse(body, content_type=ics.CONTENT_TYPE)
    # Customers' names and phone numbers: no shared caches, no search engines.
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


@dataclass(frozen=True)
class Feed:
    label: str
    target: str
    url: str


def calendar_feeds_view(request: HttpRequest) -> HttpResponse:
    """The business's and each member's feed address, with regenerate and turn-off buttons."""
    if not dashboard_allows(request, "view"):
        raise PermissionDenied
    request.current_app = dashboard_site.name
    if request.method == "POST":
        if not dashboard_allows(request, "change"):
            raise PermissionDenied
        target = request.POST.get("target", "")
        action = request.POST.get("action", "")
        if action not in {"regenerate", "disable"} or not (
            target == "business" or target.isdigit()
        ):
            messages.error(request, "Unknown change.")
        else:
            calendar_token_set(
                staff_id=None if target == "business" else int(target),
                enabled=action == "regenerate",
            )
            messages.success(
                request,
                "New feed address made; the old one no longer works."
                if action == "regenerate" else "Feed turned off.",
            )
        return HttpResponseRedirect(reverse(f"{dashboard_site.name}:calendar_feeds"))

    profile = profile_get()
    feeds = [Feed(label=f"{profile.display_name} (everyone)", target="business",
                  url=feed_url(profile.calendar_token) if profile.calendar_token else "")]
    feeds += [
        Feed(label=member.name, target=str(member.pk),
             url=feed_url(member.calendar_token) if member.calendar_token else "")
        for member in StaffMember.objects.order_by("name", "pk")
    ]
    context = {
        **dashboard_site.each_context(request),
        "title": "Calendar feeds",
        "feeds": feeds,
        "can_change": dashboard_allows(request, "change"),
        "calendar_url": reverse(f"{dashboard_site.name}:calendar"),
        "past_days": FEED_PAST.days,
        "ahead_days": profile.max_days_ahead,
    }
    return TemplateResponse(request, "dashboard/booking/calendar_feeds.html", context)
