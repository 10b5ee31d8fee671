"""What the assistant knows about the business: one read per turn, plain data.

The system prompt, the ``business_info``/``list_services`` tools and the
offline dialogue all describe the business from the same snapshot, so they can
never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from booking.models import Closure, WorkingHours
from booking.selectors import business_region, profile_get, services_list, staff_list

DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
CLOSURES_AHEAD = timedelta(days=60)
MAX_CLOSURES = 10


@dataclass(frozen=True)
class ServiceFact:
    id: int
    name: str
    duration_minutes: int
    price: Decimal
    description: str
    staff: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "duration_minutes": self.duration_minutes,
            "price": f"{self.price:.2f}",
            "description": self.description,
            "staff": list(self.staff),
        }


@dataclass(frozen=True)
class BusinessFacts:
    name: str
    address: str
    phone: str
    email: str
    timezone: ZoneInfo
    region: str  # country for reading national phone numbers, e.g. "US"
    services: tuple[ServiceFact, ...]
    staff: tuple[str, ...]
    # Opening hours per day key ("mon".."sun"): merged working hours of all staff.
    hours: dict[str, list[tuple[time, time]]]
    closures: tuple[dict[str, str], ...]
    min_notice_minutes: int
    max_days_ahead: int
    cancellation_notice_minutes: int

    def service_named(self, name: str) -> ServiceFact | None:
        wanted = " ".join(str(name).split()).casefold()
        for service in self.services:
            if service.name.casefold() == wanted or str(service.id) == wanted:
                return service
        return None

    def hours_text(self) -> list[str]:
        lines = []
        for key, label in zip(DAY_KEYS, DAY_NAMES, strict=True):
            spans = self.hours.get(key, [])
            text = ", ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in spans) if spans else "closed"
            lines.append(f"{label}: {text}")
        return lines

    def policies(self) -> dict[str, Any]:
        return {
            "min_notice_minutes": self.min_notice_minutes,
            "max_days_ahead": self.max_days_ahead,
            "cancellation_notice_minutes": self.cancellation_notice_minutes,
            "cancellation": (
                f"Appointments can be cancelled or moved online up to "
                f"{_duration(self.cancellation_notice_minutes)} before they start."
            ),
            "booking_window": (
                f"Bookings open {_duration(self.min_notice_minutes)} ahead at the earliest "
                f"and up to {self.max_days_ahead} days ahead."
            ),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "phone": self.phone,
            "email": self.email,
            "timezone": self.timezone.key,
            "hours": {
                key: [[f"{a:%H:%M}", f"{b:%H:%M}"] for a, b in spans]
                for key, spans in self.hours.items()
            },
            "closures": list(self.closures),
            "policies": self.policies(),
            "services": [service.as_dict() for service in self.services],
            "staff": list(self.staff),
        }


def _duration(minutes: int) -> str:
    if minutes and minutes % 1440 == 0:
        days = minutes // 1440
        return f"{days} day{'s' if days != 1 else ''}"
    if minutes and minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minutes"


def _merge(spans: list[tuple[time, time]]) -> list[tuple[time, time]]:
    merged: list[tuple[time, time]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def business_facts(*, now: datetime) -> BusinessFacts:
    """A snapshot of the business in context (a handful of queries)."""
    profile = profile_get()
    tz = ZoneInfo(profile.timezone)
    staff = list(staff_list())
    staff_ids = [member.pk for member in staff]
    services = []
    for service in services_list().prefetch_related("staff"):
        names = tuple(m.name for m in service.staff.all() if m.active)
        if names:  # a service nobody offers cannot be booked; don't advertise it
            services.append(ServiceFact(
                id=service.pk, name=service.name, duration_minutes=service.duration_minutes,
                price=service.price, description=service.description, staff=names,
            ))
    by_day: dict[str, list[tuple[time, time]]] = {key: [] for key in DAY_KEYS}
    for weekday, start, end in WorkingHours.objects.filter(staff_id__in=staff_ids).values_list(
        "weekday", "start", "end"
    ):
        by_day[DAY_KEYS[weekday]].append((start, end))
    closures = tuple(
        {
            "start": start.astimezone(tz).isoformat(),
            "end": end.astimezone(tz).isoformat(),
            "reason": reason,
        }
        for start, end, reason in Closure.objects.filter(
            staff__isnull=True, end__gt=now, start__lt=now + CLOSURES_AHEAD
        ).order_by("start").values_list("start", "end", "reason")[:MAX_CLOSURES]
    )
    return BusinessFacts(
        name=profile.display_name,
        address=profile.address,
        phone=profile.phone,
        email=profile.email,
        timezone=tz,
        region=business_region(profile) or "US",
        services=tuple(services),
        staff=tuple(member.name for member in staff),
        hours={key: _merge(spans) for key, spans in by_day.items()},
        closures=closures,
        min_notice_minutes=profile.min_notice_minutes,
        max_days_ahead=profile.max_days_ahead,
        cancellation_notice_minutes=profile.cancellation_notice_minutes,
    )
