"""A business's state as one JSON-ready dict (``manage.py tenant_report``)."""

from __future__ import annotations

from typing import Any

from billing.entitlements import plan_of
from billing.reconcile import subscription_status as billing_subscription_status
from booking.selectors import (
    appointments_all,
    appointments_count_this_month,
    business_zone,
    profile_get,
    waitlist_entries,
)
from tenants.context import current_tenant


def tenant_report() -> dict[str, Any]:
    """Plan, usage, appointments and waitlist of the tenant in context.

    Times are ISO 8601 in the business's zone, with its UTC offset.
    """
    tenant = current_tenant()
    plan = plan_of(tenant)
    profile = profile_get()
    tz = business_zone(profile)
    # Stripe's status of the business's subscription, or "manual" without one.
    subscription_status = billing_subscription_status(tenant)
    return {
        "slug": tenant.slug,
        "plan": plan.code,
        "subscription_status": subscription_status,
        "features": sorted(plan.features),
        "appointments_this_month": appointments_count_this_month(profile=profile),
        "appointment_limit": plan.appointment_limit,
        "appointments": [
            {
                "reference": a.reference,
                "service": a.service.name,
                "staff": a.staff.name,
                "start": a.start.astimezone(tz).isoformat(),
                "end": a.end.astimezone(tz).isoformat(),
                "status": a.status,
                "channel": a.channel,
                "customer_name": a.customer.name,
                "customer_phone": a.customer.phone,
            }
            for a in appointments_all()
        ],
        "waitlist": [
            {"customer_name": w.customer.name, "service": w.service.name, "status": w.status}
            for w in waitlist_entries()
        ],
    }
