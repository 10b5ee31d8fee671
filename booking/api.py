"""The public JSON API: services, availability and booking, per business.

Thin views over ``booking.selectors`` and ``booking.services``. The tenant comes
from the slug in the path (TenantMiddleware); no cookies are read, so the API
is exempt from CSRF. Every refusal is ``{"error": code, "detail": text}`` with
a 4xx status; the OpenAPI document is served at ``/api/schema``.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, P, Schema, Status
from ninja.errors import HttpError, Throttled
from ninja.errors import ValidationError as NinjaValidationError
from ninja.params import HeaderEx
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from booking.errors import BookingError, InvalidInput
from booking.models import Appointment
from booking.selectors import business_zone, services_list, slots_search
from booking.services import appointment_book, customer_details_clean
from booking.tokens import manage_url_for
from smartscheduler import ratelimits

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024

api = NinjaAPI(
    title="Smart Scheduler booking API",
    version="1",
    description=(
        "Book appointments with a business on Smart Scheduler. Times are ISO 8601 with the "
        "business's UTC offset. Errors are `{\"error\": code, \"detail\": text}`."
    ),
    openapi_url="/schema",
    docs_url=None,
    urls_namespace="booking_api",
    # Per address and business; an operation's own throttle list replaces this one.
    throttle=[ratelimits.Throttle("api_ip")],
)


# --- errors ---------------------------------------------------------------------------


class ApiError(Exception):
    """A refusal of the request itself (size, JSON), before any domain logic runs."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        self.status, self.code, self.detail = status, code, detail
        super().__init__(detail)


def _error(request: HttpRequest, status: int, code: str, detail: str) -> HttpResponse:
    return api.create_response(request, {"error": code, "detail": detail}, status=status)


def _location(loc: Any) -> str:
    # ninja prefixes the source ("query", "header"); the field name is what helps.
    parts = [str(p) for p in loc if p not in ("query", "path", "header", "body")]
    return ".".join(parts) or "request"


def _validation_detail(errors: list[dict[str, Any]]) -> str:
    return "; ".join(f"{_location(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in errors)


@api.exception_handler(BookingError)
def _booking_error(request: HttpRequest, exc: BookingError) -> HttpResponse:
    return _error(request, exc.http_status, exc.code, str(exc))


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return _error(request, exc.status, exc.code, exc.detail)


@api.exception_handler(NinjaValidationError)
def _ninja_validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    return _error(request, 422, "invalid_input", _validation_detail(exc.errors))


@api.exception_handler(Throttled)
def _rate_limited(request: HttpRequest, exc: Throttled) -> HttpResponse:
    # Ninja adds Retry-After from the throttle's wait().
    return _error(request, 429, ratelimits.RATE_LIMITED, ratelimits.DEFAULT_DETAIL)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(
        exc.status_code, "error"
    )
    return _error(request, exc.status_code, code, str(exc))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, "not_found", "Not found.")


@api.exception_handler(OperationalError)
def _database_busy(request: HttpRequest, exc: OperationalError) -> HttpResponse:
    # SQLite's write lock waited out its timeout: nothing was written, retrying is safe.
    # The driver's message (no personal data) tells a lock timeout from, say, a
    # missing table, which would otherwise look the same from outside.
    logger.warning("database error answering %s: %s", request.path, exc)
    response = _error(request, 503, "busy", "We are very busy right now; please try again.")
    response["Retry-After"] = "1"
    return response


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.exception("unexpected error answering %s", request.path)
    return _error(request, 500, "server_error", "Something went wrong on our side.")


# --- schemas ----------------------------------------------------------------------------


class ErrorOut(Schema):
    error: str = Field(description="A stable machine-readable code, e.g. slot_taken.")
    detail: str = Field(description="A sentence to show the customer.")


class ServiceOut(Schema):
    id: int
    name: str
    duration_minutes: int
    price: str = Field(description="Decimal amount as a string, e.g. \"120.00\".")
    description: str


class SlotOut(Schema):
    start: datetime
    end: datetime
    staff_id: int


class AvailabilityOut(Schema):
    timezone: str = Field(description="The business's IANA time zone.")
    slots: list[SlotOut]


class AppointmentIn(BaseModel):
    """What a booking request carries; anything else is refused."""

    model_config = ConfigDict(extra="forbid", strict=True)

    service: int = Field(description="A service id from /services.")
    start: str = Field(
        description="A slot start from /availability: ISO 8601 with a UTC offset.",
        json_schema_extra={"format": "date-time"},
    )
    name: str = Field(max_length=120)
    phone: str = Field(max_length=40, description="International (+1…) or national format.")
    email: str | None = Field(default=None, max_length=254)
    staff: int | None = Field(default=None, description="A staff id; omit for anyone.")


class AppointmentOut(Schema):
    reference: str = Field(description="Short code the customer quotes, e.g. K7Q-4MZ.")
    start: datetime
    end: datetime
    service: int = Field(description="The service id.")
    staff_id: int
    manage_url: str = Field(description="Signed link to view, move or cancel the appointment.")


_ERRORS: dict[int, type[Schema]] = dict.fromkeys((400, 404, 422, 429, 503), ErrorOut)


# --- endpoints ----------------------------------------------------------------------------


@api.get(
    "/b/{slug}/services",
    response={200: list[ServiceOut], **_ERRORS},
    summary="Services the business offers",
    tags=["booking"],
)
def services(request: HttpRequest, slug: str) -> list[ServiceOut]:
    return [
        ServiceOut(
            id=s.pk,
            name=s.name,
            duration_minutes=s.duration_minutes,
            price=f"{s.price:.2f}",
            description=s.description,
        )
        for s in services_list()
    ]


@api.get(
    "/b/{slug}/availability",
    response={200: AvailabilityOut, **_ERRORS},
    summary="Free slots of a service between two dates (at most 31 days)",
    tags=["booking"],
)
def availability(
    request: HttpRequest,
    slug: str,
    service: int,
    start: date,
    end: date,
    staff: int | None = None,
) -> HttpResponse:
    found = slots_search(service_id=service, start_date=start, end_date=end, staff_id=staff)
    tz = business_zone()
    # A month's search can hold hundreds of slots; validating each as a SlotOut
    # and then the whole AvailabilityOut again cost about as much as the search.
    # The renderer's encoder formats the datetimes exactly as it would for the
    # declared schema, which still describes this body in the OpenAPI document.
    body = {
        "timezone": tz.key,
        "slots": [
            {"start": s.start.astimezone(tz), "end": s.end.astimezone(tz), "staff_id": s.staff_id}
            for s in found
        ],
    }
    return api.create_response(request, body, status=200)


def _json_object(request: HttpRequest) -> dict[str, Any]:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    too_large = ApiError(413, "body_too_large", f"The body must be at most {MAX_BODY_BYTES} bytes.")
    if declared > MAX_BODY_BYTES:
        raise too_large
    try:
        raw = request.body
    except RequestDataTooBig:
        raise too_large from None
    if len(raw) > MAX_BODY_BYTES:
        raise too_large
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        # 16 KB of "[[[[..." nests deeper than the decoder's recursion limit.
        raise ApiError(400, "bad_json", "The body must be a JSON object.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "The body must be a JSON object.")
    return data


def _parse_start(value: str) -> datetime:
    try:
        # fromisoformat's C parser stops at a NUL and would accept "...-05:00\x00".
        if not (value.isascii() and value.isprintable()):
            raise ValueError(value)
        start = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput("start", "Not an ISO 8601 date and time.") from None
    if start.utcoffset() is None:
        raise InvalidInput("start", "Include the UTC offset, e.g. 2026-03-09T09:00:00-05:00.")
    return start


@api.post(
    "/b/{slug}/appointments",
    response={201: AppointmentOut, 402: ErrorOut, 403: ErrorOut, 409: ErrorOut,
              413: ErrorOut, **_ERRORS},
    summary="Book an appointment",
    description=(
        "Books the slot or refuses it: 409 when it is taken, 402 when the business's plan "
        "allows no more bookings this month. Send an `Idempotency-Key` header to retry safely: "
        "the same key with the same body returns the same appointment."
    ),
    tags=["booking"],
    throttle=[ratelimits.Throttle("api_ip"), ratelimits.Throttle("api_booking_ip")],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": AppointmentIn.model_json_schema()}},
        }
    },
)
def appointment_create(
    request: HttpRequest,
    slug: str,
    idempotency_key: HeaderEx[str | None, P(alias="Idempotency-Key")] = None,
) -> Status[AppointmentOut]:
    try:
        body = AppointmentIn.model_validate(_json_object(request))
    except PydanticValidationError as exc:
        errors = [dict(e) for e in exc.errors(include_url=False)]
        raise ApiError(422, "invalid_input", _validation_detail(errors)) from None
    start = _parse_start(body.start)
    customer = customer_details_clean(name=body.name, phone=body.phone, email=body.email or "")
    appointment = appointment_book(
        service_id=body.service,
        start=start,
        customer=customer,
        staff_id=body.staff,
        channel=Appointment.Channel.API,
        idempotency_key=idempotency_key,
    )
    tz = business_zone()
    return Status(201, AppointmentOut(
        reference=appointment.reference,
        start=appointment.start.astimezone(tz),
        end=appointment.end.astimezone(tz),
        service=appointment.service_id,
        staff_id=appointment.staff_id,
        manage_url=manage_url_for(appointment),
    ))
