from __future__ import annotations

import random
from typing import Any

import pytest
from djstripe.models import Event

from billing.models import BillingAccount
from billing.services import plan_for_price
from tenants.models import Tenant
from tests.billing.conftest import post_event
from tests.fakes.stripe_server import FakeStripe

pytestmark = pytest.mark.django_db

PLANS = ["starter", "standard", "premium"]


def history(fake: FakeStripe, tenant: Tenant, rng: random.Random) -> list[dict[str, Any]]:
    """A subscription's life at the fake Stripe, and every event it sent on the way."""
    customer = fake.customer_create({"metadata": {"tenant_id": str(tenant.pk)}})
    BillingAccount.objects.create(tenant=tenant, stripe_customer_id=customer["id"])
    sub = fake.subscription_create(customer=customer["id"], plan=rng.choice(PLANS),
                                   metadata={"tenant_id": str(tenant.pk)})
    events = [fake.event("customer.subscription.created", fake.get(sub["id"]))]
    for _ in range(7):
        move = rng.choice(["plan", "past_due", "active", "cancel_later", "paid"])
        if move == "plan":
            events.append(fake.subscription_change(sub["id"], plan=rng.choice(PLANS)))
        elif move == "past_due":
            events.append(fake.subscription_change(sub["id"], status="past_due"))
            events.append(fake.event("invoice.payment_failed",
                                     fake.invoice_for(sub["id"], paid=False)))
        elif move == "active":
            events.append(fake.subscription_change(sub["id"], status="active"))
        elif move == "cancel_later":
            events.append(fake.subscription_change(sub["id"], cancel_at_period_end=True))
        else:
            events.append(fake.event("invoice.paid", fake.invoice_for(sub["id"], paid=True)))
    if rng.random() < 0.3:
        events.append(fake.subscription_change(sub["id"], status="canceled"))
    return events


def test_a_shuffled_replay_with_duplicates_converges_to_stripes_truth(
    fake_stripe: FakeStripe, make_tenant: Any
) -> None:
    rng = random.Random(20261124)
    tenants = [make_tenant(plan="starter") for _ in range(20)]
    events: list[dict[str, Any]] = []
    for tenant in tenants:
        events += history(fake_stripe, tenant, rng)
    unique = len(events)
    events += rng.sample(events, k=unique // 4)  # 20% of the deliveries are repeats
    rng.shuffle(events)
    assert len(events) >= 200

    for event in events:
        assert post_event(event).status_code == 200

    assert Event.objects.count() == unique
    for tenant in tenants:
        account = BillingAccount.objects.get(tenant=tenant)
        truth = fake_stripe.get(account.stripe_subscription_id)
        tenant.refresh_from_db()
        assert account.status == truth["status"]
        assert tenant.plan == plan_for_price(truth["items"]["data"][0]["price"]["id"])
        assert account.cancel_at_period_end == truth["cancel_at_period_end"]
