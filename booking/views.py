"""The customer-facing booking page: choose, book, confirm, and manage by signed link.

Server-rendered and complete without JavaScript: every choice is a plain link
or form carrying query parameters (``service``, ``staff``, ``from``, ``date``,
``start``); static/js/booking.js only fetches a day's times from the JSON API
without a reload. The tenant comes from the slug (TenantMiddleware), every
write goes through ``booking.services`` and each BookingError becomes a
sentence on the page, never a server error.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

import phonenumbers
from django.contrib import messages
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import dateformat, timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.entitlements import has_feature
from billing.plans import WAITLIST
from booking import ics, waitlist
from booking.availability import PARTS_OF_DAY, Slot
from booking.errors import (
    BookingError,
    BookingPaused,
    InvalidInput,
    PlanLimitReached,
    SlotTaken,
    SlotUnavailable,
    TooLateToCancel,
)
from booking.forms import (
    BookingForm,
    RescheduleForm,
    WaitlistForm,
    parse_date,
    parse_id,
    parse_start,
    service_from,
    staff_for_service,
)
from booking.models import Appointment, BusinessProfile, Service, StaffMember
from booking.selectors import business_zone, profile_get, services_list, slots_search, staff_list
from booking.services import appointment_book, appointment_cancel, appointment_reschedule
from booking.tokens import appointment_from_manage_token, manage_token_for
from smartscheduler import ratelimits
from tenants.context import current_tenant

logger = logging.getLogger(__name__)

# The day picker shows two weeks at a time and pages through the booking window.
WINDOW_DAYS = 14
SLOT_TAKEN_MESSAGE = "That time was just taken, please pick another."
BUSY_MESSAGE = "We are very busy right now; please try again in a moment."

# Per address and business: every page shown, and a tighter count of forms sent.
page_limit = ratelimits.limit("booking_page_ip", ratelimits.tenant_ip_key)
submit_limit = ratelimits.limit("booking_submit_ip", ratelimits.tenant_ip_key, method="POST")


# --- page furniture -------------------------------------------------------------------


@dataclass(frozen=True)
class Business:
    name: str
    address: str
    phone_display: str
    phone_link: str
    slug: str


def _business(profile: BusinessProfile) -> Business:
    display, link = profile.phone, ""
    if profile.phone:
        try:
            number = phonenumbers.parse(profile.phone, None)
            display = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
            link = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        except phonenumbers.NumberParseException:
            pass
    return Business(
        name=profile.display_name or current_tenant().name,
        address=profile.address,
        phone_display=display,
        phone_link=link,
        slug=current_tenant().slug,
    )


def _zone_label(profile: BusinessProfile) -> str:
    # "New York time" for America/New_York: what a customer recognises.
    return f"{profile.timezone.rsplit('/', 1)[-1].replace('_', ' ')} time"


def _render(
    request: HttpRequest, template: str, context: Mapping[str, Any], *, status: int = 200
) -> HttpResponse:
    profile = profile_get()
    base = {
        "business": _business(profile),
        "profile": profile,
        "zone": profile.timezone,
        "zone_label": _zone_label(profile),
    }
    # Template date filters show every instant in the business's zone, whoever looks.
    with timezone.override(business_zone(profile)):
        return render(request, template, {**base, **context}, status=status)


def _url(name: str, *, query: Mapping[str, object] | None = None, **kwargs: str) -> str:
    path = reverse(name, kwargs={"slug": current_tenant().slug, **kwargs})
    params = {k: str(v) for k, v in (query or {}).items() if v not in (None, "")}
    return f"{path}?{urlencode(params)}" if params else path


def _start_href(url: str) -> str:
    """``url`` ready for booking.js to append an encoded slot start."""
    return f"{url}{'&' if '?' in url else '?'}start="


def _availability_api() -> str:
    return f"/api/b/{current_tenant().slug}/availability"


def _see_other(url: str) -> HttpResponseRedirect:
    # 303: after a POST the browser fetches the result with GET; reloading it re-sends nothing.
    return HttpResponseRedirect(url, status=303)


def _link_invalid(request: HttpRequest) -> HttpResponse:
    return _render(request, "booking/link_invalid.html", {}, status=404)


# --- the day picker -----------------------------------------------------------------


@dataclass(frozen=True)
class DayCell:
    day: date
    count: int
    selected: bool
    url: str


@dataclass(frozen=True)
class SlotCell:
    start: datetime
    end: datetime
    staff_id: int
    value: str
    url: str


@dataclass(frozen=True)
class Picker:
    days: list[DayCell]
    selected: date | None
    slots: list[SlotCell]
    earlier_url: str | None
    later_url: str | None

    @property
    def has_any(self) -> bool:
        return any(day.count for day in self.days)


def _slot_cells(slots: list[Slot], profile: BusinessProfile,
                slot_url: Callable[[str], str]) -> list[SlotCell]:
    tz = business_zone(profile)
    cells = []
    for slot in slots:
        start = slot.start.astimezone(tz)
        value = start.isoformat()
        cells.append(SlotCell(start=start, end=slot.end.astimezone(tz), staff_id=slot.staff_id,
                              value=value, url=slot_url(value)))
    return cells


def _picker(
    *,
    service: Service,
    staff_id: int | None,
    first: date | None,
    chosen: date | None,
    page_url: Callable[[dict[str, object]], str],
    slot_url: Callable[[str], str],
    moving: Appointment | None = None,
) -> Picker:
    """Two weeks of days (those with free times are links) and the chosen day's times.

    Without a chosen day the first day with free times is shown, so the
    customer sees times at once.
    """
    profile = profile_get()
    tz = business_zone(profile)
    now = timezone.now()
    today = now.astimezone(tz).date()
    last = today + timedelta(days=profile.max_days_ahead)
    if chosen is not None and not today <= chosen <= last:
        chosen = None
    start = first or chosen or today
    if chosen is not None and not start <= chosen < start + timedelta(days=WINDOW_DAYS):
        start = chosen
    start = min(max(start, today), last)
    end = min(start + timedelta(days=WINDOW_DAYS - 1), last)

    by_day: dict[date, list[Slot]] = {}
    for slot in slots_search(service_id=service.pk, start_date=start, end_date=end,
                             staff_id=staff_id, now=now,
                             exclude_appointment_id=moving.pk if moving else None):
        by_day.setdefault(slot.start.astimezone(tz).date(), []).append(slot)
    if chosen is None and by_day:
        chosen = min(by_day)

    days = []
    day = start
    while day <= end:
        days.append(DayCell(day=day, count=len(by_day.get(day, [])), selected=day == chosen,
                            url=page_url({"from": start.isoformat(), "date": day.isoformat()})))
        day += timedelta(days=1)
    earlier = None
    if start > today:
        earlier = page_url({"from": max(today, start - timedelta(days=WINDOW_DAYS)).isoformat()})
    later = None
    if start + timedelta(days=WINDOW_DAYS) <= last:
        later = page_url({"from": (start + timedelta(days=WINDOW_DAYS)).isoformat()})
    return Picker(
        days=days,
        selected=chosen,
        slots=_slot_cells(by_day.get(chosen, []) if chosen else [], profile, slot_url),
        earlier_url=earlier,
        later_url=later,
    )


def _alternatives(service: Service, staff_id: int | None, near: datetime | None
                  ) -> list[SlotCell]:
    """Fresh times on the day of ``near`` or, when that day is full, the next day with any."""
    profile = profile_get()
    tz = business_zone(profile)
    now = timezone.now()
    today = now.astimezone(tz).date()
    last = today + timedelta(days=profile.max_days_ahead)
    day = near.astimezone(tz).date() if near is not None else today
    day = min(max(day, today), last)
    found = slots_search(service_id=service.pk, start_date=day,
                         end_date=min(day + timedelta(days=WINDOW_DAYS - 1), last),
                         staff_id=staff_id, now=now)
    if not found:
        return []
    first_day = found[0].start.astimezone(tz).date()
    return _slot_cells([s for s in found if s.start.astimezone(tz).date() == first_day],
                       profile, lambda value: "")


def _is_offered(service: Service, staff_id: int | None, start: datetime) -> bool:
    tz = business_zone()
    day = start.astimezone(tz).date()
    slots = slots_search(service_id=service.pk, start_date=day, end_date=day, staff_id=staff_id)
    return any(slot.start == start for slot in slots)


# --- choosing and booking -------------------------------------------------------------


def _chosen_service(query: Mapping[str, str]) -> tuple[Service | None, bool]:
    """The service named in the query, and whether the query named a bad one."""
    raw = query.get("service")
    if not raw:
        return None, False
    service = service_from(parse_id(raw))
    return service, service is None


def _chosen_staff(service: Service, query: Mapping[str, str]) -> tuple[StaffMember | None, bool]:
    raw = query.get("staff")
    if not raw:
        return None, False
    member = staff_for_service(service, parse_id(raw))
    return member, member is None


def _book_url(service: Service, staff: StaffMember | None) -> Callable[[str], str]:
    def url(start: str) -> str:
        return _url("booking_details", query={
            "service": service.pk, "staff": staff.pk if staff else None, "start": start,
        })
    return url


@require_GET
@page_limit
def booking_page(request: HttpRequest, slug: str) -> HttpResponse:
    context, status = _page_context(request.GET)
    return _render(request, "booking/page.html", context, status=status)


def _page_context(query: Mapping[str, str], waitlist_form: WaitlistForm | None = None,
                  ) -> tuple[dict[str, Any], int]:
    service, bad_service = _chosen_service(query)
    staff, bad_staff = (None, False) if service is None else _chosen_staff(service, query)
    context: dict[str, Any] = {"services": services_list(), "service": service, "staff": staff}
    if bad_service:
        context["problem"] = "That service is not available; please choose one from the list."
    elif bad_staff:
        context["problem"] = "That person does not offer this service; here is everyone who does."
    if service is not None:
        fixed = {"service": service.pk, "staff": staff.pk if staff else None}
        picker = _picker(
            service=service,
            staff_id=staff.pk if staff else None,
            first=parse_date(query.get("from")),
            chosen=parse_date(query.get("date")),
            page_url=lambda extra: _url("booking_page", query={**fixed, **extra}) + "#step-time",
            slot_url=_book_url(service, staff),
        )
        context.update(
            picker=picker,
            staff_members=staff_list(service_id=service.pk),
            slot_href=_start_href(_url("booking_details", query=fixed)),
            availability_api=_availability_api(),
        )
        if not picker.has_any and has_feature(current_tenant(), WAITLIST):
            context["waitlist_form"] = waitlist_form or WaitlistForm(initial=fixed)
            context["waitlist_from"] = picker.days[0].day if picker.days else None
    return context, 400 if bad_service or bad_staff else 200


def _details_context(form: BookingForm, service: Service | None, staff: StaffMember | None,
                     start: datetime | None, alternatives: list[SlotCell] | None = None,
                     ) -> dict[str, Any]:
    back = _url("booking_page")
    if service is not None:
        back = _url("booking_page", query={
            "service": service.pk, "staff": staff.pk if staff else None,
            "date": start.astimezone(business_zone()).date().isoformat() if start else None,
        }) + "#step-time"
    return {"form": form, "service": service, "staff": staff, "start": start,
            "alternatives": alternatives, "back_url": back}


def _booking_refused(form: BookingForm, exc: BookingError) -> str | None:
    """Put a refusal on the form; returns a notice for the page, if any."""
    if isinstance(exc, InvalidInput):
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return None
    if isinstance(exc, SlotTaken):
        return SLOT_TAKEN_MESSAGE
    if isinstance(exc, PlanLimitReached):
        return f"Sorry, we are not taking more online bookings this month. {_call_us()}"
    if isinstance(exc, BookingPaused):
        return f"Sorry, we are not taking bookings online at the moment. {_call_us()}"
    return exc.message


def _call_us() -> str:
    phone = _business(profile_get()).phone_display
    return f"Please call us on {phone} to book." if phone else "Please call us to book."


@require_http_methods(["GET", "POST"])
@page_limit
@submit_limit
def booking_details(request: HttpRequest, slug: str) -> HttpResponse:
    if request.method == "POST":
        return _booking_submit(request)
    service, bad_service = _chosen_service(request.GET)
    if service is None:
        return booking_page(request, slug) if bad_service else redirect(_url("booking_page"))
    staff, bad_staff = _chosen_staff(service, request.GET)
    start = parse_start(request.GET.get("start", ""))
    form = BookingForm(initial={
        "service": service.pk, "staff": staff.pk if staff else None,
        "start": start.isoformat() if start else "", "key": uuid.uuid4().hex,
    })
    alternatives = None
    notice = None
    status = 200
    if bad_staff:
        staff, status = None, 400
    if start is None or not _is_offered(service, staff.pk if staff else None, start):
        # Taken since the list was shown, or never offered: offer fresh times instead.
        notice = "That time is no longer available; please pick another."
        alternatives = _alternatives(service, staff.pk if staff else None, start)
        status = 400 if start is None else status
    context = _details_context(form, service, staff, start, alternatives)
    context["notice"] = notice
    return _render(request, "booking/details.html", context, status=status)


def _booking_submit(request: HttpRequest) -> HttpResponse:
    form = BookingForm(request.POST)
    if not form.is_valid():
        service = form.cleaned_data.get("service")
        service = service if isinstance(service, Service) else None
        staff = form.cleaned_data.get("staff_member")
        start = form.cleaned_data.get("start")
        alternatives = None
        if service is not None and "start" in form.errors:
            alternatives = _alternatives(service, staff.pk if staff else None, None)
        context = _details_context(form, service, staff, start, alternatives)
        return _render(request, "booking/details.html", context, status=400)

    data = form.cleaned_data
    service, staff, start = data["service"], data.get("staff_member"), data["start"]
    try:
        appointment = appointment_book(
            service_id=service.pk,
            start=start,
            customer=data["customer"],
            staff_id=staff.pk if staff else None,
            channel=Appointment.Channel.WEB,
            idempotency_key=f"web:{data['key']}",
        )
    except (BookingError, OperationalError) as exc:
        if isinstance(exc, OperationalError):
            logger.warning("database busy while booking on the booking page")
            notice: str | None = BUSY_MESSAGE
            status = 503
        else:
            notice = _booking_refused(form, exc)
            status = exc.http_status
        alternatives = None
        if isinstance(exc, SlotUnavailable):
            alternatives = _alternatives(service, staff.pk if staff else None, start)
        context = _details_context(form, service, staff, start, alternatives)
        context["notice"] = notice
        return _render(request, "booking/details.html", context, status=status)
    token = manage_token_for(appointment)
    return _see_other(_url("booking_done", reference=appointment.reference, query={"t": token}))


@require_GET
@never_cache
def booking_done(request: HttpRequest, slug: str, reference: str) -> HttpResponse:
    token = request.GET.get("t", "")
    appointment = appointment_from_manage_token(token) if token else None
    if appointment is None or appointment.reference != reference:
        return _link_invalid(request)
    return _render(request, "booking/done.html", {
        "appointment": appointment,
        "manage_url": _url("booking_manage", token=token),
        "calendar_url": _url("booking_calendar", token=token),
    })


# --- managing an appointment by its signed link --------------------------------------------
# These pages show a customer's appointment to whoever holds the link: never_cache
# keeps them out of shared caches and the browser's back-forward history.


def _manage_context(appointment: Appointment, token: str) -> dict[str, Any]:
    profile = profile_get()
    now = timezone.now()
    deadline = appointment.start - timedelta(minutes=profile.cancellation_notice_minutes)
    booked = appointment.status == Appointment.Status.BOOKED
    return {
        "appointment": appointment,
        "token": token,
        "upcoming": booked and appointment.start > now,
        "can_change": booked and now <= deadline,
        "deadline": deadline,
        "manage_url": _url("booking_manage", token=token),
        "cancel_url": _url("booking_cancel", token=token),
        "reschedule_url": _url("booking_reschedule", token=token),
        "calendar_url": _url("booking_calendar", token=token),
        "book_again_url": _url("booking_page", query={"service": appointment.service_id}),
    }


@require_GET
@never_cache
def booking_manage(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    appointment = appointment_from_manage_token(token)
    if appointment is None:
        return _link_invalid(request)
    return _render(request, "booking/manage.html", _manage_context(appointment, token))


@require_http_methods(["GET", "POST"])
@never_cache
@page_limit
@submit_limit
def booking_cancel(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    appointment = appointment_from_manage_token(token)
    if appointment is None:
        return _link_invalid(request)
    context = _manage_context(appointment, token)
    if request.method == "GET":
        if appointment.status != Appointment.Status.BOOKED:
            return redirect(context["manage_url"])
        return _render(request, "booking/cancel.html", context)
    try:
        appointment_cancel(appointment=appointment, by_customer=True)
    except TooLateToCancel as exc:
        context["error"] = _too_late(exc)
        return _render(request, "booking/manage.html", context, status=exc.http_status)
    except BookingError as exc:
        context["error"] = exc.message
        return _render(request, "booking/manage.html", context, status=exc.http_status)
    except OperationalError:
        logger.warning("database busy while cancelling on the booking page")
        context["error"] = BUSY_MESSAGE
        return _render(request, "booking/manage.html", context, status=503)
    messages.success(request, "Your appointment is cancelled.")
    return _see_other(context["manage_url"])


def _too_late(exc: TooLateToCancel) -> str:
    # The engine says "please call us."; the page can say which number.
    phone = _business(profile_get()).phone_display
    return f"{exc.message[:-1]} on {phone}." if phone and exc.message.endswith(".") else exc.message


@require_http_methods(["GET", "POST"])
@never_cache
@page_limit
@submit_limit
def booking_reschedule(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    appointment = appointment_from_manage_token(token)
    if appointment is None:
        return _link_invalid(request)
    context = _manage_context(appointment, token)
    if appointment.status != Appointment.Status.BOOKED:
        return redirect(context["manage_url"])
    service = appointment.service
    if request.method == "POST":
        form = RescheduleForm(request.POST, service=service)
        if form.is_valid():
            staff = form.cleaned_data.get("staff")
            try:
                moved = appointment_reschedule(
                    appointment=appointment, new_start=form.cleaned_data["start"],
                    by_customer=True, staff_id=staff.pk if staff else None,
                )
            except (BookingError, OperationalError) as exc:
                return _reschedule_refused(request, appointment, token, form, exc)
            when = dateformat.format(moved.start.astimezone(business_zone()),
                                     r"l j F \a\t g:i A T")
            messages.success(request, f"Your appointment is moved to {when}.")
            return _see_other(context["manage_url"])
        context.update(form=form, **_reschedule_choices(request, appointment, token, None))
        return _render(request, "booking/reschedule.html", context, status=400)

    start = parse_start(request.GET.get("start", ""))
    staff, _bad = _chosen_staff(service, request.GET)
    if start is not None:
        # A chosen time: ask before moving.
        form = RescheduleForm(initial={"start": start.isoformat(),
                                       "staff": staff.pk if staff else None}, service=service)
        context.update(form=form, new_start=start, new_staff=staff)
        return _render(request, "booking/reschedule_confirm.html", context)
    context.update(_reschedule_choices(request, appointment, token, staff))
    return _render(request, "booking/reschedule.html", context)


def _reschedule_choices(request: HttpRequest, appointment: Appointment, token: str,
                        staff: StaffMember | None, near: date | None = None) -> dict[str, Any]:
    fixed = {"staff": staff.pk if staff else None}
    picker = _picker(
        service=appointment.service,
        staff_id=staff.pk if staff else None,
        first=parse_date(request.GET.get("from")),
        chosen=near or parse_date(request.GET.get("date")),
        page_url=lambda extra: _url("booking_reschedule", token=token,
                                    query={**fixed, **extra}) + "#step-time",
        slot_url=lambda value: _url("booking_reschedule", token=token,
                                    query={**fixed, "start": value}),
        # The appointment's own time does not block its move (the move is checked
        # the same way: appointment_reschedule releases the old slot first).
        moving=appointment,
    )
    return {
        "picker": picker,
        "staff": staff,
        "staff_members": staff_list(service_id=appointment.service_id),
        "slot_href": _start_href(_url("booking_reschedule", token=token, query=fixed)),
        "availability_api": _availability_api(),
    }


def _reschedule_refused(request: HttpRequest, appointment: Appointment, token: str,
                        form: RescheduleForm, exc: BookingError | OperationalError,
                        ) -> HttpResponse:
    context = _manage_context(appointment, token)
    if isinstance(exc, OperationalError):
        logger.warning("database busy while rescheduling on the booking page")
        context["error"] = BUSY_MESSAGE
        return _render(request, "booking/manage.html", context, status=503)
    if isinstance(exc, TooLateToCancel):
        context["error"] = _too_late(exc)
        return _render(request, "booking/manage.html", context, status=exc.http_status)
    if isinstance(exc, SlotUnavailable):
        staff = form.cleaned_data.get("staff")
        start = form.cleaned_data["start"]
        context.update(
            notice=SLOT_TAKEN_MESSAGE if isinstance(exc, SlotTaken) else exc.message,
            **_reschedule_choices(request, appointment, token, staff,
                                  near=start.astimezone(business_zone()).date()),
        )
        return _render(request, "booking/reschedule.html", context, status=exc.http_status)
    context["error"] = exc.message
    return _render(request, "booking/manage.html", context, status=exc.http_status)


@require_GET
@never_cache
def booking_calendar(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    appointment = appointment_from_manage_token(token)
    if appointment is None:
        return _link_invalid(request)
    response = HttpResponse(ics.appointment_ics(appointment), content_type=ics.CONTENT_TYPE)
    response["Content-Disposition"] = (
        f'attachment; filename="appointment-{appointment.reference}.ics"'
    )
    return response


# --- waitlist -----------------------------------------------------------------------------


def _waitlist_windows(*, weekdays: list[int], part: str, first: date | None
                      ) -> list[dict[str, str]]:
    """The customer's "Mondays, mornings" as the dated local windows the waitlist keeps.

    Only days of the booking window from ``first`` on, and at most as many as
    the waitlist accepts; no preference at all means any time (no windows).
    """
    if not weekdays and not part:
        return []
    profile = profile_get()
    today = timezone.now().astimezone(business_zone(profile)).date()
    last = today + timedelta(days=profile.max_days_ahead)
    opens, closes = PARTS_OF_DAY.get(part, (time(0), time(23, 59)))
    windows: list[dict[str, str]] = []
    day = min(max(first or today, today), last)
    while day <= last and len(windows) < waitlist.MAX_WINDOWS:
        if not weekdays or day.weekday() in weekdays:
            windows.append({"date": day.isoformat(), "start": f"{opens:%H:%M}",
                            "end": f"{closes:%H:%M}"})
        day += timedelta(days=1)
    return windows


@require_POST
@page_limit
@submit_limit
def booking_waitlist_join(request: HttpRequest, slug: str) -> HttpResponse:
    form = WaitlistForm(request.POST)
    query = {key: request.POST.get(key, "") for key in ("service", "staff", "from")}
    if not has_feature(current_tenant(), WAITLIST):
        context, _status = _page_context(query)
        context["problem"] = "Sorry, this business does not keep a waitlist online."
        return _render(request, "booking/page.html", context, status=403)
    if form.is_valid():
        data = form.cleaned_data
        staff = data.get("staff_member")
        try:
            entry = waitlist.waitlist_join(
                customer=data["customer"],
                service_id=data["service"].pk,
                staff_id=staff.pk if staff else None,
                windows=_waitlist_windows(weekdays=data["days"], part=data["part_of_day"],
                                          first=parse_date(query["from"])),
                auto_book=data["auto_book"],
            )
        except waitlist.AlreadyWaiting as exc:
            form.add_error(None, exc.message)
        except InvalidInput as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        except BookingError as exc:
            form.add_error(None, exc.message)
        except OperationalError:
            logger.warning("database busy while joining the waitlist")
            form.add_error(None, BUSY_MESSAGE)
        else:
            return _render(request, "booking/on_waitlist.html", {
                "entry": entry, "service": data["service"], "staff": staff,
                "back_url": _url("booking_page"),
            })
    context, _status = _page_context(query, waitlist_form=form)
    return _render(request, "booking/page.html", context, status=400)
