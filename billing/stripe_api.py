"""The one place that configures the stripe library and reads Stripe objects.

Every call is bounded (timeout, at most one retry) because callers include the
booking path; none is made inside a database transaction.
"""

from __future__ import annotations

from typing import Any

import stripe
from django.conf import settings

DEFAULT_API_BASE = "https://api.stripe.com"


def billing_enabled() -> bool:
    """Stripe billing is on when a secret key is configured; otherwise plans are manual."""
    return bool(settings.STRIPE_SECRET_KEY)


def configure() -> None:
    """Point the stripe library (and so dj-stripe) at the configured API, with bounded calls."""
    stripe.api_base = settings.STRIPE_API_BASE or DEFAULT_API_BASE
    stripe.api_version = settings.STRIPE_API_VERSION
    stripe.max_network_retries = 1
    stripe.enable_telemetry = False
    stripe.default_http_client = stripe.new_default_http_client(
        timeout=settings.BILLING_STRIPE_TIMEOUT_SECONDS
    )


def _options() -> dict[str, Any]:
    return {"api_key": settings.STRIPE_SECRET_KEY, "stripe_version": settings.STRIPE_API_VERSION}


def as_dict(obj: Any) -> dict[str, Any]:
    """A plain dict of a StripeObject (dj-stripe patches attribute access, e.g. ``items``)."""
    if isinstance(obj, stripe.StripeObject):
        result: dict[str, Any] = obj.to_dict()
        return result
    return dict(obj)


def subscription_retrieve(subscription_id: str) -> dict[str, Any]:
    return as_dict(stripe.Subscription.retrieve(subscription_id, **_options()))


def checkout_session_retrieve(session_id: str) -> dict[str, Any]:
    return as_dict(stripe.checkout.Session.retrieve(session_id, **_options()))


def customer_retrieve(customer_id: str) -> dict[str, Any]:
    return as_dict(stripe.Customer.retrieve(customer_id, **_options()))


def customer_create(*, name: str, tenant_id: str) -> dict[str, Any]:
    return as_dict(
        stripe.Customer.create(
            name=name,
            metadata={"tenant_id": tenant_id},
            # One customer per business even when the owner double-clicks.
            idempotency_key=f"customer-for-tenant-{tenant_id}",
            **_options(),
        )
    )


def checkout_session_create(
    *, customer_id: str, price_id: str, tenant_id: str, plan: str,
    success_url: str, cancel_url: str,
) -> dict[str, Any]:
    metadata = {"tenant_id": tenant_id, "plan": plan}
    return as_dict(
        stripe.checkout.Session.create(
            mode="subscription",
            customer=customer_id,
            client_reference_id=tenant_id,
            line_items=[{"price": price_id, "quantity": 1}],
            metadata=metadata,
            subscription_data={"metadata": metadata},
            success_url=success_url,
            cancel_url=cancel_url,
            **_options(),
        )
    )


def portal_session_create(
    *, customer_id: str, return_url: str, subscription_id: str = ""
) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if subscription_id:
        # Changing plans on a live subscription happens in the portal, so the
        # business never ends up paying for two subscriptions.
        extra["flow_data"] = {
            "type": "subscription_update",
            "subscription_update": {"subscription": subscription_id},
        }
    return as_dict(
        stripe.billing_portal.Session.create(
            customer=customer_id, return_url=return_url, **extra, **_options()
        )
    )
