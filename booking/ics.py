"""iCalendar (RFC 5545) for appointments: an email attachment, a download, a feed.

Times are written in UTC (``...Z``), which every calendar application converts
to its user's zone; no VTIMEZONE needed. An appointment's UID is derived from
its reference and the tenant, so the confirmation, a reschedule notice and a
feed all describe the same event and calendar apps update it in place.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from icalendar import Calendar, Event

from booking.models import Appointment, BusinessProfile
from booking.selectors import profile_get
from tenants.context import current_tenant

PRODID = "-//Smart Scheduler//Appointments//EN"
CONTENT_TYPE = "text/calendar; charset=utf-8"

Audience = Literal["customer", "business"]


def event_uid(appointment: Appointment) -> str:
    """Stable and globally unique: references are unique only within one business."""
    host = urlsplit(settings.PUBLIC_BASE_URL).hostname or "smartscheduler"
    return f"{appointment.reference}.{current_tenant().pk.hex}@{host}"


def appointment_event(
    appointment: Appointment,
    *,
    profile: BusinessProfile | None = None,
    audience: Audience = "customer",
    sequence: int = 0,
    now: datetime | None = None,
) -> Event:
    """One VEVENT for ``appointment``.

    ``audience="customer"``: "<service> at <business>", what a customer keeps
    in their calendar. ``audience="business"``: the service and the customer's
    name and phone, for the business's own (token-protected) feeds.
    ``sequence`` counts the times the event changed (reschedules), so calendar
    apps let a later copy replace an earlier one.
    """
    profile = profile or profile_get()
    event = Event()
    event.add("uid", event_uid(appointment))
    event.add("dtstamp", (now or timezone.now()).astimezone(UTC))
    event.add("dtstart", appointment.start.astimezone(UTC))
    event.add("dtend", appointment.end.astimezone(UTC))
    event.add("sequence", sequence)
    if audience == "business":
        customer = appointment.customer
        event.add("summary", f"{appointment.service.name}: {customer.name}")
        lines = [
            f"Customer: {customer.name} ({customer.phone})",
            f"With: {appointment.staff.name}",
            f"Reference: {appointment.reference}",
        ]
        if appointment.notes:
            lines.append(f"Notes: {appointment.notes}")
    else:
        event.add("summary", f"{appointment.service.name} at {profile.display_name}")
        lines = [f"With: {appointment.staff.name}", f"Reference: {appointment.reference}"]
        if profile.phone:
            lines.append(f"Questions or changes: {profile.phone}")
    event.add("description", "\n".join(lines))
    if profile.address:
        event.add("location", profile.address)
    cancelled = appointment.status == Appointment.Status.CANCELLED
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    return event


def _calendar(name: str | None = None) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    # PUBLISH: a copy of the event, not a meeting invitation expecting a reply.
    calendar.add("method", "PUBLISH")
    if name:
        calendar.add("x-wr-calname", name)
    return calendar


def appointment_ics(
    appointment: Appointment, *, sequence: int = 0, now: datetime | None = None
) -> bytes:
    """A one-event calendar file for the customer (attachment or add-to-calendar download)."""
    calendar = _calendar()
    calendar.add_component(appointment_event(appointment, sequence=sequence, now=now))
    return bytes(calendar.to_ical())


def calendar_feed(
    appointments: Iterable[Appointment],
    *,
    name: str,
    audience: Audience = "business",
    now: datetime | None = None,
) -> bytes:
    """A calendar of many appointments (a subscribable feed, or a download of several).

    Cancelled appointments passed in are marked CANCELLED, so a subscriber's
    copy is withdrawn; leave them out to simply not list them. Load the
    appointments with ``select_related("service", "staff", "customer")``.
    """
    profile = profile_get()
    stamp = now or timezone.now()
    calendar = _calendar(name)
    # Feeds are refreshed by polling; hint at a sensible interval.
    calendar.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT1H")
    for appointment in appointments:
        calendar.add_component(
            appointment_event(appointment, profile=profile, audience=audience, now=stamp)
        )
    return bytes(calendar.to_ical())
