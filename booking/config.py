"""A business's setup as one JSON document (``manage.py tenant_config``).

The whole file is validated before anything is touched; every problem is
reported with its path (``staff[1].hours.mon[0]: ...``). Import then replaces
services, staff, hours, closures and policy in one tenant transaction. Services
and staff are matched by name, so appointments keep pointing at them; ones left
out of the file are deleted, or retired (``active=False``) when appointments or
waitlist entries still refer to them. Export writes the same format, so
export -> import changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError

from booking.models import (
    MAX_BUFFER_MINUTES,
    MAX_SERVICE_MINUTES,
    Appointment,
    Closure,
    Service,
    StaffMember,
    WaitlistEntry,
    WorkingHours,
)
from booking.selectors import profile_get
from tenants.context import current_tenant, tenant_atomic
from tenants.directory import control_plane_changed
from tenants.models import Tenant, validate_timezone

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TOP_KEYS = ("name", "timezone", "policy", "services", "staff", "closures")
REQUIRED_TOP_KEYS = ("name", "timezone", "services", "staff")
SERVICE_KEYS = (
    "name", "duration_minutes", "price", "buffer_before_minutes", "buffer_after_minutes",
    "description",
)
STAFF_KEYS = ("name", "services", "hours")
CLOSURE_KEYS = ("start", "end", "staff", "reason")
# policy key -> (lowest, highest, default); bounds match BusinessProfile's validators.
POLICY_INTS: dict[str, tuple[int, int, int]] = {
    "slot_step_minutes": (5, 240, 15),
    "min_notice_minutes": (0, 60 * 24 * 30, 60),
    "max_days_ahead": (1, 730, 60),
    "cancellation_notice_minutes": (0, 60 * 24 * 30, 120),
    "waitlist_hold_minutes": (1, 24 * 60, 15),
}
POLICY_KEYS = (*POLICY_INTS, "reminder_offsets_minutes")
DEFAULT_REMINDERS = [1440, 120]
MAX_ITEMS = {"services": 200, "staff": 200, "closures": 2000}
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class ConfigError(ValueError):
    """The setup file is invalid; ``errors`` lists every problem, each naming its path."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("\n".join(errors))


@dataclass
class ServiceConfig:
    name: str
    duration_minutes: int
    price: Decimal
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0
    description: str = ""


@dataclass
class StaffConfig:
    name: str
    services: list[str] = field(default_factory=list)
    hours: dict[int, list[tuple[time, time]]] = field(default_factory=dict)


@dataclass
class ClosureConfig:
    start: datetime  # aware, in the business's zone
    end: datetime
    staff: str | None
    reason: str = ""


@dataclass
class SetupConfig:
    name: str
    timezone: str
    policy: dict[str, Any]
    services: list[ServiceConfig]
    staff: list[StaffConfig]
    closures: list[ClosureConfig]


@dataclass
class ImportSummary:
    services: int
    staff: int
    closures: int
    retired_services: list[str]
    retired_staff: list[str]


# --- validation ------------------------------------------------------------------------


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def obj(self, value: Any, path: str, allowed: tuple[str, ...],
            required: tuple[str, ...]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.fail(path, "must be an object")
            return None
        for key in value:
            if key not in allowed:
                self.fail(f"{path}.{key}" if path else key,
                          f"unknown key (allowed: {', '.join(allowed)})")
        for key in required:
            if key not in value:
                self.fail(f"{path}.{key}" if path else key, "is required")
        return value

    def array(self, value: Any, path: str, limit: int) -> list[Any]:
        if not isinstance(value, list):
            self.fail(path, "must be a list")
            return []
        if len(value) > limit:
            self.fail(path, f"at most {limit} entries")
            return []
        return value

    def integer(self, value: Any, path: str, lo: int, hi: int) -> int | None:
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            self.fail(path, f"must be a whole number from {lo} to {hi}, not {value!r}")
            return None
        return value

    def text(self, value: Any, path: str, max_length: int, *, required: bool) -> str | None:
        if not isinstance(value, str):
            self.fail(path, "must be text")
            return None
        value = value.strip()
        if required and not value:
            self.fail(path, "must not be empty")
            return None
        if len(value) > max_length:
            self.fail(path, f"at most {max_length} characters")
            return None
        return value

    def clock(self, value: Any, path: str) -> time | None:
        if not isinstance(value, str) or not _HHMM.match(value):
            self.fail(path, f"must be a time as HH:MM (00:00 to 23:59), not {value!r}")
            return None
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))

    def local_datetime(self, value: Any, path: str, tz: ZoneInfo | None) -> datetime | None:
        try:
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is not None:
            self.fail(path, f"must be a local date and time as YYYY-MM-DDTHH:MM, not {value!r}")
            return None
        if not 2000 <= parsed.year <= 2999:
            self.fail(path, "year out of range")
            return None
        return parsed.replace(tzinfo=tz) if tz is not None else parsed

    def price(self, value: Any, path: str) -> Decimal | None:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.fail(path, f"must be an amount such as \"120.00\", not {value!r}")
            return None
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            amount = None
        if (
            amount is None
            or not amount.is_finite()
            or amount < 0
            or amount >= Decimal("10000000")
            or amount != amount.quantize(Decimal("0.01"))
        ):
            self.fail(path, f"must be an amount from 0.00 with at most 2 decimals, not {value!r}")
            return None
        return amount.quantize(Decimal("0.01"))


def _validate_policy(check: _Checker, raw: Any) -> dict[str, Any]:
    policy: dict[str, Any] = {key: default for key, (_, _, default) in POLICY_INTS.items()}
    policy["reminder_offsets_minutes"] = list(DEFAULT_REMINDERS)
    values = check.obj(raw, "policy", POLICY_KEYS, ())
    if values is None:
        return policy
    for key, (lo, hi, _) in POLICY_INTS.items():
        if key in values:
            policy[key] = check.integer(values[key], f"policy.{key}", lo, hi)
    if "reminder_offsets_minutes" in values:
        path = "policy.reminder_offsets_minutes"
        offsets = check.array(values["reminder_offsets_minutes"], path, 5)
        parsed = [check.integer(v, f"{path}[{i}]", 1, 60 * 24 * 30) for i, v in enumerate(offsets)]
        if len(set(parsed)) != len(parsed):
            check.fail(path, "must not repeat a value")
        policy["reminder_offsets_minutes"] = sorted(
            (v for v in parsed if v is not None), reverse=True
        )
    return policy


def _validate_services(check: _Checker, raw: Any) -> list[ServiceConfig]:
    services: list[ServiceConfig] = []
    seen: set[str] = set()
    for i, item in enumerate(check.array(raw, "services", MAX_ITEMS["services"])):
        path = f"services[{i}]"
        values = check.obj(item, path, SERVICE_KEYS, ("name", "duration_minutes"))
        if values is None:
            continue
        name = check.text(values.get("name"), f"{path}.name", 120, required=True)
        if name is not None:
            if name.casefold() in seen:
                check.fail(f"{path}.name", f"{name!r} is listed twice")
            seen.add(name.casefold())
        duration = (
            check.integer(values["duration_minutes"], f"{path}.duration_minutes", 5,
                          MAX_SERVICE_MINUTES)
            if "duration_minutes" in values else None
        )
        price = check.price(values.get("price", "0.00"), f"{path}.price")
        before = check.integer(values.get("buffer_before_minutes", 0),
                               f"{path}.buffer_before_minutes", 0, MAX_BUFFER_MINUTES)
        after = check.integer(values.get("buffer_after_minutes", 0),
                              f"{path}.buffer_after_minutes", 0, MAX_BUFFER_MINUTES)
        description = check.text(values.get("description", ""), f"{path}.description", 2000,
                                 required=False)
        if None in (name, duration, price, before, after, description):
            continue
        assert name is not None and duration is not None and price is not None
        assert before is not None and after is not None and description is not None
        services.append(ServiceConfig(name, duration, price, before, after, description))
    return services


def _validate_hours(check: _Checker, raw: Any, path: str) -> dict[int, list[tuple[time, time]]]:
    hours: dict[int, list[tuple[time, time]]] = {}
    values = check.obj(raw, path, DAYS, ())
    if values is None:
        return hours
    for day, intervals in values.items():
        if day not in DAYS:
            continue
        day_path = f"{path}.{day}"
        parsed: list[tuple[time, time]] = []
        for j, interval in enumerate(check.array(intervals, day_path, 24)):
            item_path = f"{day_path}[{j}]"
            if not isinstance(interval, list) or len(interval) != 2:
                check.fail(item_path, "must be a pair [\"HH:MM\", \"HH:MM\"]")
                continue
            start = check.clock(interval[0], f"{item_path}[0]")
            end = check.clock(interval[1], f"{item_path}[1]")
            if start is None or end is None:
                continue
            if not start < end:
                check.fail(item_path, "the end must be after the start (same day)")
                continue
            parsed.append((start, end))
        parsed.sort()
        for (_, prev_end), (next_start, _) in pairwise(parsed):
            if next_start < prev_end:
                check.fail(day_path, "intervals overlap")
                break
        if parsed:
            hours[DAYS.index(day)] = parsed
    return hours


def _validate_staff(check: _Checker, raw: Any, service_names: set[str]) -> list[StaffConfig]:
    staff: list[StaffConfig] = []
    seen: set[str] = set()
    for i, item in enumerate(check.array(raw, "staff", MAX_ITEMS["staff"])):
        path = f"staff[{i}]"
        values = check.obj(item, path, STAFF_KEYS, ("name",))
        if values is None:
            continue
        name = check.text(values.get("name"), f"{path}.name", 120, required=True)
        if name is not None:
            if name.casefold() in seen:
                check.fail(f"{path}.name", f"{name!r} is listed twice")
            seen.add(name.casefold())
        offered: list[str] = []
        for j, service in enumerate(check.array(values.get("services", []), f"{path}.services",
                                                MAX_ITEMS["services"])):
            if not isinstance(service, str) or service not in service_names:
                check.fail(f"{path}.services[{j}]", f"unknown service {service!r}")
            elif service in offered:
                check.fail(f"{path}.services[{j}]", f"{service!r} is listed twice")
            else:
                offered.append(service)
        hours = _validate_hours(check, values.get("hours", {}), f"{path}.hours")
        if name is not None:
            staff.append(StaffConfig(name=name, services=offered, hours=hours))
    return staff


def _validate_closures(check: _Checker, raw: Any, tz: ZoneInfo | None,
                       staff_names: set[str]) -> list[ClosureConfig]:
    closures: list[ClosureConfig] = []
    for i, item in enumerate(check.array(raw, "closures", MAX_ITEMS["closures"])):
        path = f"closures[{i}]"
        values = check.obj(item, path, CLOSURE_KEYS, ("start", "end"))
        if values is None:
            continue
        start = check.local_datetime(values.get("start"), f"{path}.start", tz)
        end = check.local_datetime(values.get("end"), f"{path}.end", tz)
        if start is not None and end is not None and not start < end:
            check.fail(f"{path}.end", "must be after the start")
        staff = values.get("staff")
        if staff is not None and (not isinstance(staff, str) or staff not in staff_names):
            check.fail(f"{path}.staff", f"unknown staff member {staff!r} (null = everyone)")
        reason = check.text(values.get("reason", ""), f"{path}.reason", 200, required=False)
        if start is not None and end is not None and reason is not None and start < end:
            closures.append(ClosureConfig(start=start, end=end, staff=staff, reason=reason))
    return closures


def config_validate(data: Any) -> SetupConfig:
    """Parse a setup document; raises ConfigError listing every problem."""
    check = _Checker()
    values = check.obj(data, "", TOP_KEYS, REQUIRED_TOP_KEYS)
    if values is None:
        raise ConfigError(check.errors)
    name = check.text(values.get("name", ""), "name", 120, required=True)
    tz: ZoneInfo | None = None
    zone = values.get("timezone")
    if "timezone" in values:
        try:
            if not isinstance(zone, str):
                raise ValidationError("not text")
            validate_timezone(zone)
            tz = ZoneInfo(zone)
        except ValidationError:
            check.fail("timezone", f"{zone!r} is not an IANA time zone such as America/New_York")
    policy = _validate_policy(check, values.get("policy", {}))
    services = _validate_services(check, values.get("services", []))
    raw_service_names = {
        s.get("name", "").strip() for s in values.get("services", []) or []
        if isinstance(s, dict) and isinstance(s.get("name"), str)
    } if isinstance(values.get("services"), list) else set()
    staff = _validate_staff(check, values.get("staff", []), raw_service_names)
    raw_staff_names = {s.name for s in staff}
    closures = _validate_closures(check, values.get("closures", []), tz, raw_staff_names)
    if check.errors:
        raise ConfigError(check.errors)
    assert name is not None and tz is not None
    return SetupConfig(name=name, timezone=tz.key, policy=policy, services=services,
                       staff=staff, closures=closures)


# --- import / export ---------------------------------------------------------------------


def config_import(data: Any) -> ImportSummary:
    """Validate ``data`` and make it the current tenant's setup, all or nothing.

    Raises ConfigError (nothing changed) when the document is invalid.
    """
    config = config_validate(data)
    tenant = current_tenant()
    retired_services: list[str] = []
    retired_staff: list[str] = []
    with tenant_atomic(durable=True):
        profile = profile_get()
        profile.display_name = config.name
        profile.timezone = config.timezone
        for key, value in config.policy.items():
            setattr(profile, key, value)
        profile.save()

        services: dict[str, Service] = {s.name: s for s in Service.objects.all()}
        for position, item in enumerate(config.services):
            service = services.pop(item.name, None) or Service(name=item.name)
            service.duration_minutes = item.duration_minutes
            service.price = item.price
            service.buffer_before_minutes = item.buffer_before_minutes
            service.buffer_after_minutes = item.buffer_after_minutes
            service.description = item.description
            service.active = True
            service.position = position
            service.save()
        for leftover in services.values():
            if (Appointment.objects.filter(service=leftover).exists()
                    or WaitlistEntry.objects.filter(service=leftover).exists()):
                if leftover.active:
                    leftover.active = False
                    leftover.save(update_fields=["active"])
                retired_services.append(leftover.name)
            else:
                leftover.delete()
        by_name = {s.name: s for s in Service.objects.filter(active=True)}

        members: dict[str, StaffMember] = {m.name: m for m in StaffMember.objects.all()}
        WorkingHours.objects.all().delete()
        Closure.objects.all().delete()
        staff_by_name: dict[str, StaffMember] = {}
        hours: list[WorkingHours] = []
        for person in config.staff:
            member = members.pop(person.name, None) or StaffMember(name=person.name)
            member.active = True
            member.save()
            member.services.set([by_name[name] for name in person.services])
            staff_by_name[person.name] = member
            hours.extend(
                WorkingHours(staff=member, weekday=weekday, start=start, end=end)
                for weekday, intervals in person.hours.items()
                for start, end in intervals
            )
        WorkingHours.objects.bulk_create(hours)
        for leftover_member in members.values():
            if (Appointment.objects.filter(staff=leftover_member).exists()
                    or WaitlistEntry.objects.filter(staff=leftover_member).exists()):
                if leftover_member.active:
                    leftover_member.active = False
                    leftover_member.save(update_fields=["active"])
                leftover_member.services.clear()
                retired_staff.append(leftover_member.name)
            else:
                leftover_member.delete()

        Closure.objects.bulk_create(
            Closure(
                start=closure.start,
                end=closure.end,
                staff=staff_by_name[closure.staff] if closure.staff else None,
                reason=closure.reason,
            )
            for closure in config.closures
        )

    # The control plane holds the name and zone the rest of the site shows; it
    # is another database, so it follows once the tenant's setup is committed.
    if tenant.name != config.name or tenant.timezone != config.timezone:
        Tenant.objects.filter(pk=tenant.pk).update(name=config.name, timezone=config.timezone)
        control_plane_changed()  # an update sends no signal
        tenant.name, tenant.timezone = config.name, config.timezone
    return ImportSummary(
        services=len(config.services),
        staff=len(config.staff),
        closures=len(config.closures),
        retired_services=retired_services,
        retired_staff=retired_staff,
    )


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")


def _local(value: datetime, tz: ZoneInfo) -> str:
    local = value.astimezone(tz).replace(tzinfo=None)
    return local.isoformat(timespec="seconds" if local.second or local.microsecond else "minutes")


def config_export() -> dict[str, Any]:
    """The current tenant's setup in the import format (active services and staff)."""
    profile = profile_get()
    tz = ZoneInfo(profile.timezone)
    services = list(Service.objects.filter(active=True).order_by("position", "name", "pk"))
    service_order = {s.pk: i for i, s in enumerate(services)}
    members = list(
        StaffMember.objects.filter(active=True).order_by("name", "pk").prefetch_related(
            "services", "hours"
        )
    )
    active_staff = {m.pk: m.name for m in members}
    staff_out = []
    for member in members:
        offered = sorted(
            (s for s in member.services.all() if s.pk in service_order),
            key=lambda s: service_order[s.pk],
        )
        hours: dict[str, list[list[str]]] = {day: [] for day in DAYS}
        for interval in sorted(member.hours.all(), key=lambda h: (h.weekday, h.start)):
            hours[DAYS[interval.weekday]].append([_hhmm(interval.start), _hhmm(interval.end)])
        staff_out.append(
            {"name": member.name, "services": [s.name for s in offered], "hours": hours}
        )
    closures = [
        {
            "start": _local(c.start, tz),
            "end": _local(c.end, tz),
            "staff": active_staff[c.staff_id] if c.staff_id else None,
            "reason": c.reason,
        }
        for c in Closure.objects.order_by("start", "pk")
        if c.staff_id is None or c.staff_id in active_staff
    ]
    return {
        "name": profile.display_name,
        "timezone": profile.timezone,
        "policy": {
            "slot_step_minutes": profile.slot_step_minutes,
            "min_notice_minutes": profile.min_notice_minutes,
            "max_days_ahead": profile.max_days_ahead,
            "cancellation_notice_minutes": profile.cancellation_notice_minutes,
            "reminder_offsets_minutes": list(profile.reminder_offsets_minutes),
            "waitlist_hold_minutes": profile.waitlist_hold_minutes,
        },
        "services": [
            {
                "name": s.name,
                "duration_minutes": s.duration_minutes,
                "price": f"{s.price:.2f}",
                "buffer_before_minutes": s.buffer_before_minutes,
                "buffer_after_minutes": s.buffer_after_minutes,
                "description": s.description,
            }
            for s in services
        ],
        "staff": staff_out,
        "closures": closures,
    }
