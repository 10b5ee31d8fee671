"""Reconcile on read: the subscription state the entitlement checks trust.

Webhooks keep the local state current, but one can be lost or late. When the
state is older than ``BILLING_SYNC_MAX_AGE_SECONDS``, or a renewal is overdue
(the period ended and nothing told us what happened), it is re-read from
Stripe: with a bounded timeout, at most once per ``BILLING_SYNC_RETRY_SECONDS``
per business, and never inside a database transaction. When Stripe cannot be
reached the last known state stands.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import stripe
from django.conf import settings
from django.core.cache import cache
from django.db import connections, transaction
from django.utils import timezone

from billing import stripe_api
from billing.models import BillingAccount
from billing.services import LIVE_STATUSES, subscription_sync
from tenants.directory import RowCopies
from tenants.models import Tenant

logger = logging.getLogger(__name__)


def account_of(tenant: Tenant) -> BillingAccount | None:
    return BillingAccount.objects.filter(tenant=tenant).first()


# Every booking reads its business's account; see tenants.directory for when a
# copy is used (billing.apps connects saves and deletes to a new generation).
_accounts: RowCopies[BillingAccount] = RowCopies(BillingAccount, "tenant_id")


def account_recent(tenant: Tenant) -> BillingAccount | None:
    """``account_of`` from this process's copy, when it is of the current generation."""
    return _accounts.get(tenant.pk)


def needs_refresh(account: BillingAccount, now: datetime) -> bool:
    if not stripe_api.billing_enabled() or not account.stripe_subscription_id:
        return False
    if account.last_synced_at is None:
        return True
    if now - account.last_synced_at > timedelta(seconds=settings.BILLING_SYNC_MAX_AGE_SECONDS):
        return True
    # The period ended but no event said whether it renewed.
    return (
        account.status in LIVE_STATUSES
        and account.current_period_end is not None
        and account.current_period_end <= now
        and account.last_synced_at < account.current_period_end
    )


def _open_transaction_alias() -> str | None:
    for conn in connections.all(initialized_only=True):
        if conn.in_atomic_block:
            return str(conn.alias)
    return None


def account_refresh(tenant: Tenant, *, force: bool = False) -> None:
    """Re-read the business's subscription from Stripe now (bounded, rate limited)."""
    key = f"billing:refresh:{tenant.pk}"
    if not cache.add(key, 1, timeout=settings.BILLING_SYNC_RETRY_SECONDS) and not force:
        return
    account = account_of(tenant)
    if account is None or not account.stripe_subscription_id:
        return
    try:
        subscription_sync(subscription_id=account.stripe_subscription_id, tenant_id=str(tenant.pk))
    except stripe.StripeError as exc:
        logger.warning(
            "billing: could not refresh the subscription of tenant %s from Stripe (%s); "
            "keeping the last known state",
            tenant.pk,
            type(exc).__name__,
        )


def account_current(tenant: Tenant, *, now: datetime | None = None) -> BillingAccount | None:
    """The business's billing account, refreshed from Stripe first when it is stale.

    Inside a transaction (the booking engine checks entitlements in its write
    transaction) the last known state is used and the refresh runs after commit.
    """
    now = now or timezone.now()
    account = account_recent(tenant)
    if account is None or not needs_refresh(account, now):
        return account
    alias = _open_transaction_alias()
    if alias is not None:
        transaction.on_commit(lambda: account_refresh(tenant), using=alias)
        return account
    account_refresh(tenant)
    return account_of(tenant)


@dataclass(frozen=True)
class BillingState:
    """What the dashboard and the entitlement checks need to know."""

    manual: bool
    status: str
    status_label: str
    current_period_end: datetime | None
    cancel_at_period_end: bool
    past_due_since: datetime | None
    grace_ends: datetime | None
    bookings_paused: bool
    stripe_customer_id: str

    @property
    def next_invoice_date(self) -> datetime | None:
        if self.manual or self.cancel_at_period_end or self.status not in LIVE_STATUSES:
            return None
        return self.current_period_end

    @property
    def in_grace(self) -> bool:
        return self.status == BillingAccount.Status.PAST_DUE and not self.bookings_paused


def _paused(account: BillingAccount, now: datetime, grace_ends: datetime | None) -> bool:
    status = account.status
    if status == BillingAccount.Status.PAST_DUE:
        return grace_ends is not None and now >= grace_ends
    if status == BillingAccount.Status.CANCELED:
        # Paid until the end of the period it was cancelled in.
        return account.current_period_end is None or now >= account.current_period_end
    return status in {
        BillingAccount.Status.UNPAID,
        BillingAccount.Status.INCOMPLETE_EXPIRED,
        BillingAccount.Status.PAUSED,
    }


def billing_state(
    tenant: Tenant, *, now: datetime | None = None, refresh: bool = True
) -> BillingState:
    now = now or timezone.now()
    account = account_current(tenant, now=now) if refresh else account_of(tenant)
    if account is None or not account.stripe_subscription_id:
        return BillingState(
            manual=True, status=BillingAccount.Status.MANUAL,
            status_label=BillingAccount.Status.MANUAL.label, current_period_end=None,
            cancel_at_period_end=False, past_due_since=None, grace_ends=None,
            bookings_paused=False,
            stripe_customer_id=account.stripe_customer_id if account else "",
        )
    grace_ends = None
    if account.status == BillingAccount.Status.PAST_DUE and account.past_due_since is not None:
        grace_ends = account.past_due_since + timedelta(days=settings.BILLING_PAST_DUE_GRACE_DAYS)
    return BillingState(
        manual=False,
        status=account.status,
        status_label=BillingAccount.Status(account.status).label,
        current_period_end=account.current_period_end,
        cancel_at_period_end=account.cancel_at_period_end,
        past_due_since=account.past_due_since,
        grace_ends=grace_ends,
        bookings_paused=_paused(account, now, grace_ends),
        stripe_customer_id=account.stripe_customer_id,
    )


def subscription_status(tenant: Tenant) -> str:
    """The status ``tenant_report`` shows: Stripe's, or ``manual``."""
    return billing_state(tenant, refresh=False).status
