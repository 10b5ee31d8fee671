"""The assistant's tools: typed functions over the booking engine.

Every tool takes a pydantic model of arguments (their JSON schemas are the
``tools`` parameter sent to the LLM) and returns plain JSON: ``{"ok": true, ...}``
or ``{"ok": false, "error": code, "message": text}``, which the model (or the
offline dialogue) turns into a sentence.

Safety rules enforced here, whatever the model asks:

* The business is the tenant in context when the runner was made. No tool has a
  tenant or business argument; unknown arguments are refused.
* Writes go through ``booking.services`` with the conversation's channel.
* Appointments are only booked or moved to a slot a previous
  ``check_availability`` of this conversation returned.
* A caller only sees or changes their own appointments: reference + the phone
  number on the booking must match (or the caller ID on the phone/SMS channels),
  and repeated failed lookups lock the conversation out.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from django.db import OperationalError
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from agent.facts import BusinessFacts, ServiceFact
from booking.availability import (
    PARTS_OF_DAY,
    Policy,
    ServiceSpec,
    Slot,
    StaffSpec,
    find_slots,
)
from booking.errors import BookingError, InvalidInput
from booking.models import MAX_BLOCK, Appointment
from booking.phones import phone_normalize_or_none
from booking.selectors import (
    MAX_SEARCH_DAYS,
    appointment_by_reference,
    appointments_for_customer,
    busy_blocks,
    reference_normalize,
    search_dates_check,
    search_span,
    window_parse,
)
from booking.services import (
    CustomerDetails,
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
    customer_details_clean,
)
from booking.tokens import manage_url_for
from booking.waitlist import MAX_WINDOWS, waitlist_join
from tenants.context import current_tenant
from tenants.models import Tenant

logger = logging.getLogger(__name__)

# How much a single availability answer lists: enough to choose from, small
# enough for a prompt or to be read out on the phone.
MAX_SLOTS = 10
SLOTS_PER_DAY = 3
DEFAULT_SEARCH_DAYS = 7
# Slots remembered as "offered" (create/reschedule must use one of them).
MAX_OFFERED = 60
# Wrong reference/phone pairs before the conversation may look up no more.
MAX_FAILED_LOOKUPS = 5
MAX_LISTED_APPOINTMENTS = 10
MAX_WAITLIST_DAYS = 31

CHANNELS = ("chat", "phone", "sms")
CALLER_ID_CHANNELS = ("phone", "sms")


# --- argument types -------------------------------------------------------------------


def _int_to_str(value: object) -> object:
    # Models sometimes send a service id as a number; it is still a plain name/id.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


ServiceRef = Annotated[
    str,
    BeforeValidator(_int_to_str),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=120),
    Field(description="The service's name exactly as listed by list_services."),
]
StaffRef = Annotated[
    str,
    BeforeValidator(_int_to_str),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=120),
    Field(description="A staff member's name; leave out for anyone."),
]
PartOfDay = Literal["morning", "afternoon", "evening"]
Phone = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=40),
    Field(description="The customer's phone number, as they gave it."),
]
Reference = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=6, max_length=12),
    Field(description="The booking reference, e.g. K7Q-4MZ."),
]
CustomerName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=120),
    Field(description="The customer's full name."),
]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254)]


class ToolArgs(BaseModel):
    # Anything the schema does not name is refused: a "tenant" or "slug" argument
    # can never steer a call.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ListServicesArgs(ToolArgs):
    pass


class CheckAvailabilityArgs(ToolArgs):
    service: ServiceRef
    date: dt.date | None = Field(
        default=None, description="Local date (YYYY-MM-DD) to search; default today."
    )
    end_date: dt.date | None = Field(
        default=None,
        description="Last local date of a range to search (inclusive); default a week.",
    )
    part_of_day: PartOfDay | None = Field(default=None, description="Only this part of the day.")
    after: dt.time | None = Field(default=None, description="Only slots starting at or after "
                                  "this local time (HH:MM).")
    before: dt.time | None = Field(default=None, description="Only slots starting before this "
                                   "local time (HH:MM).")
    time: dt.time | None = Field(
        default=None, description="An exact local start time (HH:MM) the customer asked for."
    )
    staff: StaffRef | None = None


class CreateAppointmentArgs(ToolArgs):
    service: ServiceRef
    start: datetime = Field(
        description="The slot's start exactly as check_availability returned it (ISO 8601)."
    )
    staff_id: int | None = Field(
        default=None, description="The staff_id of that slot from check_availability."
    )
    name: CustomerName
    phone: Phone
    email: Email | None = Field(default=None, description="Optional email for a confirmation.")


class CancelAppointmentArgs(ToolArgs):
    reference: Reference
    phone: Phone | None = Field(
        default=None,
        description="The phone number the appointment was booked with (the caller's number "
                    "is used on a phone call when left out).",
    )


class RescheduleAppointmentArgs(ToolArgs):
    reference: Reference
    phone: Phone | None = Field(
        default=None, description="The phone number the appointment was booked with."
    )
    new_start: datetime = Field(
        description="The new slot's start exactly as check_availability returned it."
    )
    staff_id: int | None = Field(default=None, description="The staff_id of that slot.")


class FindMyAppointmentsArgs(ToolArgs):
    phone: Phone | None = Field(
        default=None, description="The customer's phone number (caller ID on a call)."
    )
    reference: Reference | None = Field(
        default=None,
        description="A booking reference of theirs; needed in chat unless this "
                    "conversation already confirmed the phone number.",
    )


class JoinWaitlistArgs(ToolArgs):
    service: ServiceRef
    date: dt.date | None = Field(default=None, description="First local date that suits.")
    end_date: dt.date | None = Field(default=None, description="Last local date that suits.")
    part_of_day: PartOfDay | None = None
    staff: StaffRef | None = None
    name: CustomerName
    phone: Phone
    email: Email | None = None


class BusinessInfoArgs(ToolArgs):
    topic: Literal["all", "hours", "address", "policies", "prices"] = Field(
        default="all", description="What the customer asked about."
    )


# --- results ------------------------------------------------------------------------------


def failure(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "error": code, "message": message, **extra}


def say_when(moment: datetime, tz: Any) -> str:
    """"Tuesday, March 10 at 9:30 AM" in the business's zone."""
    local = moment.astimezone(tz)
    hour = local.strftime("%I").lstrip("0")
    return f"{local:%A, %B} {local.day} at {hour}:{local:%M %p}"


@dataclass(frozen=True)
class ToolCall:
    """One tool call as made and answered (stored in the transcript)."""

    name: str
    arguments: dict[str, Any]
    result: dict[str, Any]

    @property
    def ok(self) -> bool:
        return bool(self.result.get("ok"))


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    args: type[ToolArgs]
    writes: bool
    handler: Callable[[ToolRunner, Any], dict[str, Any]]


def _schema(args: type[ToolArgs]) -> dict[str, Any]:
    def clean(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: clean(v) for k, v in node.items() if k != "title"}
        if isinstance(node, list):
            return [clean(v) for v in node]
        return node

    schema: dict[str, Any] = clean(args.model_json_schema())
    schema.setdefault("properties", {})
    schema["additionalProperties"] = False
    return schema


# Which conversation outcome a successful write means.
OUTCOMES = {
    "create_appointment": "booked",
    "cancel_appointment": "cancelled",
    "reschedule_appointment": "rescheduled",
    "join_waitlist": "waitlisted",
}


class ToolRunner:
    """Runs tools for one turn of one conversation, bound to the tenant in context.

    ``memory`` is the tools' part of the dialogue state (JSON): slots offered,
    phone numbers proven, references booked, failed lookups. The engine loads it
    from and saves it to ``Conversation.state["tools"]``; providers must not edit
    it. ``calls`` lists every call made this turn, in order.
    """

    def __init__(
        self,
        *,
        channel: str,
        now: datetime,
        facts: BusinessFacts,
        memory: Mapping[str, Any] | None = None,
        caller_phone: str = "",
    ) -> None:
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        self.tenant: Tenant = current_tenant()
        self.channel = channel
        self.now = now
        self.facts = facts
        self.tz = facts.timezone
        self.caller_phone = caller_phone if channel in CALLER_ID_CHANNELS else ""
        self.memory: dict[str, Any] = json.loads(json.dumps(dict(memory or {})))
        self.calls: list[ToolCall] = []

    # --- the interface providers use ---

    @staticmethod
    def names() -> list[str]:
        return list(TOOLS)

    @staticmethod
    def schemas() -> list[dict[str, Any]]:
        """The ``tools`` parameter of a Chat Completions request."""
        return [
            {
                "type": "function",
                "function": {
                    "name": spec.name,
                    "description": spec.description,
                    "parameters": _schema(spec.args),
                },
            }
            for spec in TOOLS.values()
        ]

    def run(self, name: str, arguments: str | Mapping[str, Any] | None) -> dict[str, Any]:
        """Run tool ``name`` with JSON (text or parsed) arguments; never raises."""
        parsed, result = self._run(name, arguments)
        self.calls.append(ToolCall(name=name, arguments=parsed, result=result))
        return result

    @property
    def outcome(self) -> str | None:
        """The conversation outcome the writes of this turn amount to (the last wins)."""
        for call in reversed(self.calls):
            if call.ok and call.name in OUTCOMES:
                return OUTCOMES[call.name]
        return None

    @property
    def verified_phone(self) -> str:
        """The last phone number this conversation proved to be the customer's."""
        phones = self.memory.get("verified_phones") or []
        return str(phones[-1]) if phones else ""

    # --- internals ---

    def _run(
        self, name: str, arguments: str | Mapping[str, Any] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        spec = TOOLS.get(name)
        if isinstance(arguments, str):
            try:
                loaded = json.loads(arguments or "{}")
            except ValueError:
                return {"_raw": arguments[:500]}, failure(
                    "invalid_arguments", "The arguments were not valid JSON."
                )
        else:
            loaded = dict(arguments or {})
        if not isinstance(loaded, dict):
            return {"_raw": str(loaded)[:500]}, failure(
                "invalid_arguments", "The arguments must be a JSON object."
            )
        if spec is None:
            return loaded, failure("unknown_tool", f"There is no tool called {name[:64]!r}.")
        try:
            args = spec.args.model_validate(loaded)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)
            )
            return loaded, failure("invalid_arguments", problems)
        if current_tenant() != self.tenant:
            # Defence in depth: the runner's business is fixed when it is made.
            raise RuntimeError("tool run under a different tenant than its runner")
        try:
            return loaded, spec.handler(self, args)
        except BookingError as exc:
            return loaded, failure(exc.code, exc.message, **_field_of(exc))
        except OperationalError:
            logger.warning("database busy running tool %s", name)
            return loaded, failure("busy", "We are very busy right now; please try again.")
        except Exception:
            logger.exception("tool %s failed", name)
            return loaded, failure("server_error", "Something went wrong on our side.")

    def _local(self, moment: datetime) -> datetime:
        if moment.utcoffset() is None:
            # A model may drop the offset; the business's wall clock is meant.
            return moment.replace(tzinfo=self.tz)
        return moment

    def _slot_out(self, start: datetime, end: datetime, staff_id: int,
                  staff_names: Mapping[int, str]) -> dict[str, Any]:
        return {
            "start": start.astimezone(self.tz).isoformat(),
            "end": end.astimezone(self.tz).isoformat(),
            "when": say_when(start, self.tz),
            "staff_id": staff_id,
            "staff": staff_names.get(staff_id, ""),
        }

    def _remember_offered(self, service_id: int, slots: list[tuple[datetime, int]]) -> None:
        offered = list(self.memory.get("offered") or [])
        for start, staff_id in slots:
            offered.append({
                "service_id": service_id,
                "start": start.astimezone(UTC).isoformat(),
                "staff_id": staff_id,
            })
        self.memory["offered"] = offered[-MAX_OFFERED:]

    def _offered(self, service_id: int, start: datetime,
                 staff_id: int | None) -> dict[str, Any] | None:
        wanted = start.astimezone(UTC).isoformat()
        for slot in reversed(self.memory.get("offered") or []):
            if slot.get("service_id") == service_id and slot.get("start") == wanted and (
                staff_id is None or slot.get("staff_id") == staff_id
            ):
                return dict(slot)
        return None

    def _verify(self, phone: str) -> None:
        phones = [p for p in self.memory.get("verified_phones") or [] if p != phone]
        self.memory["verified_phones"] = [*phones, phone][-5:]

    def _is_verified(self, e164: str) -> bool:
        return e164 == self._caller_e164() or e164 in (self.memory.get("verified_phones") or [])

    def _caller_e164(self) -> str:
        if not self.caller_phone:
            return ""
        return phone_normalize_or_none(self.caller_phone, region=self.facts.region) or ""

    def _locked_out(self) -> bool:
        return int(self.memory.get("failed_lookups") or 0) >= MAX_FAILED_LOOKUPS

    def _failed_lookup(self) -> None:
        self.memory["failed_lookups"] = int(self.memory.get("failed_lookups") or 0) + 1

    def _own_appointment(
        self, reference: str, phone: str | None
    ) -> tuple[Appointment | None, dict[str, Any] | None]:
        """The caller's appointment by reference + phone, or the refusal to return."""
        if self._locked_out():
            return None, failure(
                "too_many_attempts",
                "Too many references or phone numbers did not match. Please call the "
                "business or use the link in your confirmation.",
            )
        if reference_normalize(reference) is None:
            return None, failure(
                "invalid_reference", "That does not look like a booking reference (e.g. K7Q-4MZ)."
            )
        candidates = [p for p in (phone, self.caller_phone) if p]
        if not candidates:
            return None, failure(
                "phone_required", "Ask for the phone number the appointment was booked with."
            )
        for candidate in candidates:
            appointment = appointment_by_reference(reference, phone=candidate)
            if appointment is not None:
                self._verify(appointment.customer.phone)
                return appointment, None
        self._failed_lookup()
        # The same answer whether the reference exists or not: nothing to probe.
        return None, failure(
            "not_found", "No appointment matches that reference and phone number."
        )

    def _service(self, ref: str) -> Any:
        service = self.facts.service_named(ref)
        if service is None:
            raise InvalidInput(
                "service",
                "We don't offer that. Services: "
                + ", ".join(s.name for s in self.facts.services) + ".",
            )
        return service

    def _staff_id(self, ref: str | None, service: Any) -> int | None:
        if ref is None:
            return None
        wanted = " ".join(ref.split()).casefold()
        for member in sorted(self.facts.members, key=lambda m: m.id):
            if member.name.casefold() == wanted or str(member.id) == wanted:
                if member.name not in service.staff:
                    raise InvalidInput(
                        "staff", f"{member.name} does not offer {service.name}; "
                                 f"ask for {', '.join(service.staff)} or anyone."
                    )
                return member.id
        raise InvalidInput("staff", "No staff member by that name. Staff: "
                           + ", ".join(service.staff) + ".")

    def _slots(self, service: ServiceFact, *, first: date, last: date, staff_id: int | None,
               window: tuple[time, time] | None) -> list[Slot]:
        """``booking.selectors.slots_search`` over the turn's facts: one query, for the bookings.

        The staff, their hours, the closures and the policy come from the
        facts; the appointments that block slots are always read now, so a
        booking made a moment ago is never offered again.
        """
        search_dates_check(first, last)
        bounds = window_parse(window)
        members = sorted(
            (m for m in self.facts.members
             if (m.id == staff_id if staff_id is not None else service.id in m.service_ids)),
            key=lambda m: m.id,
        )
        if staff_id is not None and not members:
            raise InvalidInput("staff", "No such staff member.")
        ids = [m.id for m in members]
        # The span slots_search loads, plus the longest block.
        span_start, span_end = search_span(first, last, self.tz)
        span_end += MAX_BLOCK
        busy = busy_blocks(staff_ids=ids, span_start=span_start, span_end=span_end)
        return find_slots(
            tz=self.tz,
            policy=Policy(
                slot_step_minutes=self.facts.slot_step_minutes,
                min_notice_minutes=self.facts.min_notice_minutes,
                max_days_ahead=self.facts.max_days_ahead,
            ),
            service=ServiceSpec(
                id=service.id,
                duration_minutes=service.duration_minutes,
                buffer_before_minutes=service.buffer_before_minutes,
                buffer_after_minutes=service.buffer_after_minutes,
            ),
            staff=[StaffSpec(id=m.id, service_ids=m.service_ids & {service.id},
                             weekly_hours=m.weekly_hours) for m in members],
            closures=[c for c in self.facts.closure_spans
                      if (c.staff_id is None or c.staff_id in ids)
                      and c.start < span_end and c.end > span_start],
            busy=busy,
            now=self.now,
            start_date=first,
            end_date=last,
            window=bounds,
            staff_id=staff_id,
        )

    def _day_span(self, first: date | None, last: date | None) -> tuple[date, date]:
        today = self.now.astimezone(self.tz).date()
        start = first or today
        end = last or (start if first else start + timedelta(days=DEFAULT_SEARCH_DAYS - 1))
        if end < start:
            start, end = end, start
        return max(start, today), max(end, today)

    def _customer(self, name: str, phone: str, email: str | None) -> CustomerDetails:
        return customer_details_clean(
            name=name, phone=phone, email=email or "", region=self.facts.region
        )

    def _appointment_out(self, appointment: Appointment) -> dict[str, Any]:
        return {
            "reference": appointment.reference,
            "service": appointment.service.name,
            "staff": appointment.staff.name,
            "start": appointment.start.astimezone(self.tz).isoformat(),
            "end": appointment.end.astimezone(self.tz).isoformat(),
            "when": say_when(appointment.start, self.tz),
            "status": appointment.status,
        }


# --- the tools ------------------------------------------------------------------------------


def list_services(runner: ToolRunner, args: ListServicesArgs) -> dict[str, Any]:
    return {"ok": True, "services": [s.as_dict() for s in runner.facts.services]}


def check_availability(runner: ToolRunner, args: CheckAvailabilityArgs) -> dict[str, Any]:
    service = runner._service(args.service)
    staff_id = runner._staff_id(args.staff, service)
    first, last = runner._day_span(args.date, args.end_date if not args.time else args.date)
    if (last - first).days + 1 > MAX_SEARCH_DAYS:
        last = first + timedelta(days=MAX_SEARCH_DAYS - 1)
    window = None if args.time else _window(args.part_of_day, args.after, args.before)
    slots = runner._slots(service, first=first, last=last, staff_id=staff_id, window=window)
    names = {member.id: member.name for member in runner.facts.members}
    base = {"ok": True, "service": service.name, "timezone": runner.tz.key,
            "searched": {"from": first.isoformat(), "to": last.isoformat()}}
    if args.time is not None:
        wanted = args.time.replace(second=0, microsecond=0)
        exact = [s for s in slots if s.start.astimezone(runner.tz).time() == wanted]
        if exact:
            slot = exact[0]
            runner._remember_offered(service.id, [(slot.start, slot.staff_id)])
            return base | {"available": True,
                           "slots": [runner._slot_out(slot.start, slot.end, slot.staff_id, names)]}
        target = datetime.combine(first, wanted, runner.tz)
        nearest = sorted(slots, key=lambda s: abs((s.start - target).total_seconds()))
        picked = sorted(nearest[:5], key=lambda s: s.start)
        runner._remember_offered(service.id, [(s.start, s.staff_id) for s in picked])
        return base | {"available": False,
                       "slots": [runner._slot_out(s.start, s.end, s.staff_id, names)
                                 for s in picked],
                       "note": "That exact time is not free; these are the nearest that day."}
    by_day: dict[date, list[Slot]] = {}
    for slot in slots:
        by_day.setdefault(slot.start.astimezone(runner.tz).date(), []).append(slot)
    # A few times spread over each day, rather than the first ten of the first morning.
    per_day = MAX_SLOTS if len(by_day) == 1 else SLOTS_PER_DAY
    picked_slots = [s for day_slots in by_day.values() for s in _spread(day_slots, per_day)]
    picked_slots = picked_slots[:MAX_SLOTS]
    runner._remember_offered(service.id, [(s.start, s.staff_id) for s in picked_slots])
    return base | {
        "available": bool(picked_slots),
        "slots": [runner._slot_out(s.start, s.end, s.staff_id, names) for s in picked_slots],
        "more_available": len(slots) > len(picked_slots),
    }


def _window(part: str | None, after: time | None,
            before: time | None) -> tuple[time, time] | None:
    start, end = PARTS_OF_DAY[part] if part else (time(0), time.max)
    start = max(start, after) if after else start
    end = min(end, before) if before else end
    if (start, end) == (time(0), time.max):
        return None
    if not start < end:
        raise InvalidInput("after", "That part of the day has no time in it.")
    return start, end


def _spread(items: list[Slot], count: int) -> list[Slot]:
    if len(items) <= count:
        return items
    if count == 1:
        return items[:1]
    step = (len(items) - 1) / (count - 1)
    return [items[round(i * step)] for i in range(count)]


def create_appointment(runner: ToolRunner, args: CreateAppointmentArgs) -> dict[str, Any]:
    service = runner._service(args.service)
    start = runner._local(args.start)
    offered = runner._offered(service.id, start, args.staff_id)
    if offered is None:
        return failure(
            "not_checked",
            "Check availability first and book one of the slots check_availability returned.",
        )
    customer = runner._customer(args.name, args.phone, args.email)
    appointment = appointment_book(
        service_id=service.id, start=start, customer=customer, channel=runner.channel,
        staff_id=int(offered["staff_id"]), now=runner.now,
    )
    runner._verify(customer.phone)
    runner.memory["booked"] = [*(runner.memory.get("booked") or []), appointment.reference][-10:]
    return {"ok": True, **runner._appointment_out(appointment),
            "manage_url": manage_url_for(appointment)}


def cancel_appointment(runner: ToolRunner, args: CancelAppointmentArgs) -> dict[str, Any]:
    appointment, refusal = runner._own_appointment(args.reference, args.phone)
    if refusal is not None or appointment is None:
        return refusal or failure("not_found", "No appointment matches.")
    cancelled = appointment_cancel(appointment=appointment, by_customer=True, now=runner.now)
    return {"ok": True, **runner._appointment_out(cancelled)}


def reschedule_appointment(runner: ToolRunner, args: RescheduleAppointmentArgs) -> dict[str, Any]:
    appointment, refusal = runner._own_appointment(args.reference, args.phone)
    if refusal is not None or appointment is None:
        return refusal or failure("not_found", "No appointment matches.")
    new_start = runner._local(args.new_start)
    if runner._offered(appointment.service_id, new_start, args.staff_id) is None:
        return failure(
            "not_checked",
            f"Check availability for {appointment.service.name} first and move the "
            "appointment to one of the slots check_availability returned.",
        )
    moved = appointment_reschedule(
        appointment=appointment, new_start=new_start, by_customer=True,
        staff_id=args.staff_id, now=runner.now,
    )
    return {"ok": True, **runner._appointment_out(moved)}


def find_my_appointments(runner: ToolRunner, args: FindMyAppointmentsArgs) -> dict[str, Any]:
    phone = args.phone or runner.caller_phone
    if not phone:
        return failure("phone_required", "Ask for the phone number the booking was made with.")
    e164 = phone_normalize_or_none(phone, region=runner.facts.region)
    if e164 is None:
        return failure("invalid_input", "That phone number is not valid.", field="phone")
    if not runner._is_verified(e164):
        if args.reference is None:
            return failure(
                "verification_needed",
                "For privacy, ask for the booking reference of one of their appointments too.",
            )
        _appointment, refusal = runner._own_appointment(args.reference, e164)
        if refusal is not None:
            return refusal
    appointments = list(appointments_for_customer(e164, now=runner.now)[:MAX_LISTED_APPOINTMENTS])
    return {"ok": True, "appointments": [runner._appointment_out(a) for a in appointments]}


def join_waitlist(runner: ToolRunner, args: JoinWaitlistArgs) -> dict[str, Any]:
    service = runner._service(args.service)
    staff_id = runner._staff_id(args.staff, service)
    customer = runner._customer(args.name, args.phone, args.email)
    first, last = runner._day_span(args.date, args.end_date)
    windows: list[dict[str, str]] = []
    if args.part_of_day:
        # One window a day, and the waitlist takes at most MAX_WINDOWS of them.
        last = min(last, first + timedelta(days=MAX_WINDOWS - 1))
        start, end = PARTS_OF_DAY[args.part_of_day]
        day = first
        while day <= last:
            windows.append({"date": day.isoformat(), "start": f"{start:%H:%M}",
                            "end": f"{end:%H:%M}"})
            day += timedelta(days=1)
    elif (last - first).days + 1 > MAX_WAITLIST_DAYS:
        last = first + timedelta(days=MAX_WAITLIST_DAYS - 1)
    entry = waitlist_join(
        customer=customer, service_id=service.id, staff_id=staff_id, windows=windows,
        earliest=datetime.combine(first, time(), runner.tz),
        latest=datetime.combine(last + timedelta(days=1), time(), runner.tz),
        now=runner.now,
    )
    runner._verify(customer.phone)
    return {"ok": True, "service": service.name, "from": first.isoformat(),
            "to": last.isoformat(), "part_of_day": args.part_of_day, "status": entry.status}


def business_info(runner: ToolRunner, args: BusinessInfoArgs) -> dict[str, Any]:
    facts = runner.facts.as_dict()
    hours = {"hours": facts["hours"], "closures": facts["closures"], "timezone": facts["timezone"]}
    parts = {
        "hours": hours,
        "address": {k: facts[k] for k in ("name", "address", "phone", "email")},
        "policies": {"policies": facts["policies"]},
        "prices": {"services": [
            {k: s[k] for k in ("name", "price", "duration_minutes")} for s in facts["services"]
        ]},
    }
    if args.topic == "all":
        return {"ok": True, **facts}
    return {"ok": True, **parts[args.topic]}


TOOLS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec("list_services", "The services the business offers, with prices, "
                 "durations and who provides them.", ListServicesArgs, False, list_services),
        ToolSpec("check_availability", "Free appointment slots for a service on a date or "
                 "date range, optionally a part of the day, an exact time or a staff member. "
                 "Always call this before booking or moving an appointment.",
                 CheckAvailabilityArgs, False, check_availability),
        ToolSpec("create_appointment", "Book one of the slots check_availability returned, "
                 "after the customer confirmed it. Needs their name and phone number.",
                 CreateAppointmentArgs, True, create_appointment),
        ToolSpec("cancel_appointment", "Cancel the customer's appointment by its reference "
                 "and the phone number it was booked with, after they confirmed.",
                 CancelAppointmentArgs, True, cancel_appointment),
        ToolSpec("reschedule_appointment", "Move the customer's appointment (reference + "
                 "phone number) to a slot check_availability returned.",
                 RescheduleAppointmentArgs, True, reschedule_appointment),
        ToolSpec("find_my_appointments", "The customer's upcoming appointments.",
                 FindMyAppointmentsArgs, False, find_my_appointments),
        ToolSpec("join_waitlist", "Put the customer on the waitlist for a service when "
                 "nothing suitable is free; they are contacted when a slot opens.",
                 JoinWaitlistArgs, True, join_waitlist),
        ToolSpec("business_info", "Opening hours, address, policies and prices.",
                 BusinessInfoArgs, False, business_info),
    )
}


def _field_of(exc: BookingError) -> dict[str, Any]:
    field_name = getattr(exc, "field", None)
    return {"field": field_name} if field_name else {}

