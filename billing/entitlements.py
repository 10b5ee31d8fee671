"""What a business may do under its plan. The booking engine asks here.

Billing knows plans and subscription state; it does not know appointments, so
callers pass the month's usage in (dependencies point one way: billing <- booking).
"""

from __future__ import annotations

from datetime import datetime

from billing.plans import PlanSpec, plan_for
from billing.reconcile import billing_state
from tenants.models import Tenant


class EntitlementError(Exception):
    code = "not_entitled"


class FeatureNotInPlan(EntitlementError):
    code = "feature_not_in_plan"

    def __init__(self, feature: str, plan: PlanSpec) -> None:
        self.feature, self.plan = feature, plan
        super().__init__(f"{feature.capitalize()} is not part of the {plan.name} plan.")


class PlanLimitReached(EntitlementError):
    code = "plan_limit_reached"

    def __init__(self, plan: PlanSpec) -> None:
        self.plan = plan
        super().__init__(
            f"This business has reached its {plan.appointment_limit} bookings for this month "
            f"on the {plan.name} plan."
        )


class BookingPaused(EntitlementError):
    code = "booking_paused"

    def __init__(self, tenant: Tenant) -> None:
        super().__init__(
            f"{tenant.name} is not taking bookings online at the moment. "
            "Please contact the business directly; we are sorry for the inconvenience."
        )


def plan_of(tenant: Tenant) -> PlanSpec:
    return plan_for(tenant.plan)


def has_feature(tenant: Tenant, feature: str) -> bool:
    return feature in plan_of(tenant).features


def ensure_feature(tenant: Tenant, feature: str) -> None:
    if not has_feature(tenant, feature):
        raise FeatureNotInPlan(feature, plan_of(tenant))


def appointment_limit(tenant: Tenant) -> int | None:
    return plan_of(tenant).appointment_limit


def ensure_can_book(
    tenant: Tenant, *, booked_this_month: int, now: datetime | None = None
) -> None:
    """Raise unless one more appointment this month is allowed.

    ``booked_this_month`` counts appointments created this calendar month (in
    the business's zone) that are not cancelled; the booking engine computes it
    inside its write transaction so the count cannot race.

    Public booking pauses when the subscription is past due beyond the grace
    period, unpaid, or cancelled and past the end of its paid period.
    """
    if not tenant.is_active:
        raise BookingPaused(tenant)
    if billing_state(tenant, now=now).bookings_paused:
        raise BookingPaused(tenant)
    limit = appointment_limit(tenant)
    if limit is not None and booked_this_month >= limit:
        raise PlanLimitReached(plan_of(tenant))
