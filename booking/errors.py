"""The booking engine's domain errors: one hierarchy every caller catches.

Each error carries a stable ``code`` (API clients and the agent branch on it),
a sentence a customer can read, and the HTTP status that fits it, so the API,
the booking page, the agent and the phone flow all answer the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

from billing import entitlements


class BookingError(Exception):
    code: ClassVar[str] = "booking_error"
    http_status: ClassVar[int] = 422
    default_message: ClassVar[str] = "That booking request could not be completed."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class InvalidInput(BookingError):
    """A value the caller sent is missing, malformed or unknown."""

    code = "invalid_input"
    http_status = 422

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class IdempotencyKeyReused(InvalidInput):
    code = "idempotency_key_reused"
    http_status = 409

    def __init__(self) -> None:
        super().__init__(
            "idempotency_key",
            "This idempotency key was already used for a different booking request.",
        )


class SlotUnavailable(BookingError):
    """The requested time cannot be booked (the subclasses say why)."""

    code = "slot_unavailable"


class SlotTaken(SlotUnavailable):
    code = "slot_taken"
    http_status = 409
    default_message = "Sorry, that time has just been taken. Please choose another."


class OutsideHours(SlotUnavailable):
    code = "outside_hours"
    default_message = "That time is outside our working hours."


class OffGrid(SlotUnavailable):
    code = "off_grid"
    default_message = "Appointments start on the times listed; please pick one of those."


class Closed(SlotUnavailable):
    code = "closed"
    default_message = "We are closed at that time."


class TooSoon(SlotUnavailable):
    code = "too_soon"
    default_message = "That time is too soon to book; please choose a later one."


class TooFarAhead(SlotUnavailable):
    code = "too_far_ahead"
    default_message = "That date is too far ahead to book yet."


class NotOffered(SlotUnavailable):
    code = "not_offered"
    default_message = "That service is not offered by the chosen staff member."


class TooLateToCancel(BookingError):
    code = "too_late_to_cancel"
    http_status = 409
    default_message = "It is too late to change this appointment online; please call us."


class InvalidState(BookingError):
    """The appointment's status does not allow this change (e.g. cancelling a completed one)."""

    code = "invalid_state"
    http_status = 409
    default_message = "This appointment can no longer be changed."


class AppointmentNotFound(BookingError):
    code = "not_found"
    http_status = 404
    default_message = "No appointment matches those details."


class PlanLimitReached(BookingError):
    code = "plan_limit_reached"
    http_status = 402


class FeatureNotInPlan(BookingError):
    code = "feature_not_in_plan"
    http_status = 403

    def __init__(self, message: str | None = None, *, feature: str = "") -> None:
        self.feature = feature
        super().__init__(message)


class BookingPaused(BookingError):
    code = "booking_paused"
    http_status = 403
    default_message = "This business is not taking bookings online at the moment."


def from_entitlement(exc: entitlements.EntitlementError) -> BookingError:
    """The booking error for a billing refusal, keeping billing's wording."""
    if isinstance(exc, entitlements.PlanLimitReached):
        return PlanLimitReached(str(exc))
    if isinstance(exc, entitlements.FeatureNotInPlan):
        return FeatureNotInPlan(str(exc), feature=exc.feature)
    if isinstance(exc, entitlements.BookingPaused):
        return BookingPaused(str(exc))
    return BookingError(str(exc))


@contextmanager
def entitlement_errors() -> Iterator[None]:
    """Re-raise billing's entitlement errors as booking errors.

    ``with entitlement_errors(): ensure_feature(tenant, WAITLIST)``.
    """
    try:
        yield
    except entitlements.EntitlementError as exc:
        raise from_entitlement(exc) from exc
