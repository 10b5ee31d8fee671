"""A business's state as one JSON-ready dict (``manage.py tenant_report``)."""

from __future__ import annotations

from typing import Any

from billing.entitlements import plan_of
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
    # Billing keeps no subscription record yet: plans are set by hand in the admin.
    subscription_status = getattr(tenant, "subscription_status", None) or "manual"
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
