"""Writes to a business's plan and subscription state.

Stripe is the truth. Webhook events only say *that* something changed: the
subscription is then re-read from the API and the result applied, unless we
already hold a state read later (events arrive late, twice and out of order).
Stripe calls never run inside a database transaction.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import STRIPE, SYSTEM, Actor, field_change
from billing import stripe_api
from billing.models import BillingAccount
from billing.plans import PLANS
from tenants.directory import control_plane_changed
from tenants.models import Tenant
from tenants.services import tenant_change_record

logger = logging.getLogger(__name__)

# Subscription statuses under which Stripe still expects to bill the business.
LIVE_STATUSES = frozenset(
    {
        BillingAccount.Status.TRIALING,
        BillingAccount.Status.ACTIVE,
        BillingAccount.Status.PAST_DUE,
        BillingAccount.Status.UNPAID,
        BillingAccount.Status.INCOMPLETE,
        BillingAccount.Status.PAUSED,
    }
)


class BillingError(Exception):
    """A billing action that cannot be done (the message is safe to show an owner)."""


def account_get(tenant: Tenant) -> BillingAccount:
    account, _ = BillingAccount.objects.select_related("tenant").get_or_create(tenant=tenant)
    return account


def tenant_plan_set(*, tenant: Tenant, plan: str, actor: Actor = SYSTEM) -> None:
    """Change a business's plan (the one place billing writes ``Tenant.plan``)."""
    if plan not in PLANS:
        raise ValueError(f"Unknown plan {plan!r}.")
    if tenant.plan != plan:
        old_plan = tenant.plan
        Tenant.objects.filter(pk=tenant.pk).update(plan=plan)
        control_plane_changed()  # an update sends no signal
        tenant.plan = plan
        logger.info("billing: tenant %s plan set to %s", tenant.pk, plan)
        tenant_change_record(
            tenant=tenant, action=AuditEntry.Action.PLAN_CHANGE, actor=actor,
            changes=[field_change("plan", old_plan, plan)],
        )


def plan_for_price(price_id: str) -> str | None:
    for code, spec in PLANS.items():
        if price_id and spec.stripe_price_id == price_id:
            return code
    return None


def _timestamp(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    return datetime.fromtimestamp(int(value), tz=UTC)


def _first_item(data: dict[str, Any]) -> dict[str, Any]:
    items = data.get("items") or {}
    rows = items.get("data") or []
    return rows[0] if rows else {}


def _period_end(data: dict[str, Any]) -> datetime | None:
    # Since API version 2025-03-31 the period lives on the subscription items.
    return _timestamp(_first_item(data).get("current_period_end") or data.get("current_period_end"))


def _tenant_for(data: dict[str, Any], tenant_id: str | None) -> Tenant | None:
    customer_id = data.get("customer")
    if isinstance(customer_id, dict):
        customer_id = customer_id.get("id")
    if customer_id:
        account = (
            BillingAccount.objects.select_related("tenant")
            .filter(stripe_customer_id=customer_id)
            .first()
        )
        if account is not None:
            return account.tenant
    tenant_id = tenant_id or (data.get("metadata") or {}).get("tenant_id")
    if not tenant_id:
        return None
    try:
        return Tenant.objects.filter(pk=tenant_id).first()
    except (ValueError, TypeError):  # a malformed id in foreign metadata
        return None


def subscription_apply(
    *, data: dict[str, Any], observed_at: datetime, tenant_id: str | None = None
) -> BillingAccount | None:
    """Record a subscription as Stripe showed it at ``observed_at``.

    Ignored when the business already holds a later observation, or when the
    subscription is an older one than the business's current subscription.
    Returns the account, or None when the subscription belongs to no business.
    """
    tenant = _tenant_for(data, tenant_id)
    if tenant is None:
        logger.warning("billing: subscription with no known business ignored")
        return None
    status = str(data.get("status") or "")
    if status not in BillingAccount.Status.values or status == BillingAccount.Status.MANUAL:
        logger.warning("billing: unknown subscription status for tenant %s ignored", tenant.pk)
        return None
    created = _timestamp(data.get("created"))
    price_id = str((_first_item(data).get("price") or {}).get("id") or "")
    plan = plan_for_price(price_id)

    with transaction.atomic():
        account, _ = BillingAccount.objects.select_for_update().get_or_create(tenant=tenant)
        if account.state_as_of is not None and observed_at < account.state_as_of:
            return account
        if account.stripe_subscription_id and account.stripe_subscription_id != data.get("id"):
            older = (
                created is not None
                and account.subscription_created_at is not None
                and created < account.subscription_created_at
            )
            if older or (status not in LIVE_STATUSES and account.status in LIVE_STATUSES):
                return account
        customer_id = data.get("customer")
        if isinstance(customer_id, dict):
            customer_id = customer_id.get("id")
        account.stripe_customer_id = str(customer_id or account.stripe_customer_id)
        account.stripe_subscription_id = str(data.get("id") or "")
        account.subscription_created_at = created
        if status == BillingAccount.Status.PAST_DUE:
            if account.status != BillingAccount.Status.PAST_DUE or account.past_due_since is None:
                account.past_due_since = observed_at
        else:
            account.past_due_since = None
        account.status = status
        account.current_period_end = _period_end(data)
        account.cancel_at_period_end = bool(data.get("cancel_at_period_end"))
        account.state_as_of = observed_at
        account.last_synced_at = timezone.now()
        account.save()
        if plan is not None:
            tenant_plan_set(tenant=tenant, plan=plan, actor=STRIPE)
        elif price_id:
            logger.warning("billing: tenant %s subscribes to an unknown price", tenant.pk)
    return account


def subscription_sync(
    *, subscription_id: str, tenant_id: str | None = None
) -> BillingAccount | None:
    """Re-read a subscription from Stripe and apply what it says now."""
    observed_at = timezone.now()
    data = stripe_api.subscription_retrieve(subscription_id)
    return subscription_apply(data=data, observed_at=observed_at, tenant_id=tenant_id)


def checkout_confirm(*, tenant: Tenant, session_id: str) -> BillingAccount | None:
    """Apply a finished checkout right away, without waiting for its webhook.

    Only a session made for this business counts (the id comes from the browser).
    """
    if not stripe_api.billing_enabled() or not session_id.startswith("cs_"):
        return None
    session = stripe_api.checkout_session_retrieve(session_id)
    if session.get("client_reference_id") != str(tenant.pk) or not session.get("subscription"):
        return None
    customer_id = session.get("customer")
    if isinstance(customer_id, str) and customer_id:
        customer_link(tenant=tenant, customer_id=customer_id)
    subscription = session["subscription"]
    if isinstance(subscription, dict):
        subscription = subscription.get("id", "")
    return subscription_sync(subscription_id=str(subscription), tenant_id=str(tenant.pk))


def customer_link(*, tenant: Tenant, customer_id: str) -> None:
    """Remember the business's Stripe customer (checkout may create it)."""
    with transaction.atomic():
        account, _ = BillingAccount.objects.select_for_update().get_or_create(tenant=tenant)
        if not account.stripe_customer_id:
            account.stripe_customer_id = customer_id
            account.save(update_fields=["stripe_customer_id", "updated_at"])


def customer_ensure(*, tenant: Tenant) -> str:
    """The business's Stripe customer id, creating the customer on first use."""
    account = account_get(tenant)
    if account.stripe_customer_id:
        return account.stripe_customer_id
    customer = stripe_api.customer_create(name=tenant.name, tenant_id=str(tenant.pk))
    customer_link(tenant=tenant, customer_id=str(customer["id"]))
    return account_get(tenant).stripe_customer_id


def checkout_start(*, tenant: Tenant, plan: str, success_url: str, cancel_url: str) -> str:
    """The URL of a Stripe Checkout page subscribing the business to ``plan``.

    A business that already has a live subscription changes plan in the
    Billing Portal instead, so it is never billed twice.
    """
    if not stripe_api.billing_enabled():
        raise BillingError("Billing is managed manually; contact us to change your plan.")
    spec = PLANS.get(plan)
    if spec is None or not spec.stripe_price_id:
        raise BillingError("That plan cannot be bought online at the moment.")
    account = account_get(tenant)
    customer_id = customer_ensure(tenant=tenant)
    if account.stripe_subscription_id and account.status in LIVE_STATUSES:
        return portal_start(tenant=tenant, return_url=cancel_url, change_plan=True)
    session = stripe_api.checkout_session_create(
        customer_id=customer_id,
        price_id=spec.stripe_price_id,
        tenant_id=str(tenant.pk),
        plan=plan,
        success_url=success_url,
        cancel_url=cancel_url,
    )
    return str(session["url"])


def portal_start(*, tenant: Tenant, return_url: str, change_plan: bool = False) -> str:
    """The URL of the Stripe Billing Portal for the business."""
    if not stripe_api.billing_enabled():
        raise BillingError("Billing is managed manually; contact us about your invoices.")
    account = account_get(tenant)
    customer_id = customer_ensure(tenant=tenant)
    subscription_id = account.stripe_subscription_id if change_plan else ""
    session = stripe_api.portal_session_create(
        customer_id=customer_id, return_url=return_url, subscription_id=subscription_id
    )
    return str(session["url"])
