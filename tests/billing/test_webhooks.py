from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
import stripe
from django.test import Client
from django.utils import timezone
from djstripe.models import Event, WebhookEventTrigger

from billing.models import BillingAccount
from billing.services import checkout_start, subscription_apply
from tests.billing.conftest import WEBHOOK_SECRET, post_event
from tests.fakes.stripe_server import FakeStripe

pytestmark = pytest.mark.django_db


def _checkout(fake: FakeStripe, tenant: Any, plan: str = "standard") -> list[dict[str, Any]]:
    url = checkout_start(
        tenant=tenant, plan=plan, success_url="https://x.test/ok", cancel_url="https://x.test/no"
    )
    session_id = url.rsplit("/", 1)[-1]
    return fake.complete_checkout(session_id)


def test_checkout_then_webhooks_activate_the_plan(
    fake_stripe: FakeStripe, make_tenant: Any
) -> None:
    tenant = make_tenant(plan="starter")
    for event in _checkout(fake_stripe, tenant):
        response = post_event(event)
        assert response.status_code == 200, response.content
    tenant.refresh_from_db()
    account = BillingAccount.objects.get(tenant=tenant)
    assert tenant.plan == "standard"
    assert account.status == "active"
    assert account.stripe_customer_id.startswith("cus_")
    assert Event.objects.count() == 3


def _subscribed(fake: FakeStripe, tenant: Any, plan: str = "standard") -> dict[str, Any]:
    customer = fake.customer_create({"metadata": {"tenant_id": str(tenant.pk)}})
    return fake.subscription_create(customer=customer["id"], plan=plan,
                                    metadata={"tenant_id": str(tenant.pk)})


def _subscription_reads(fake: FakeStripe) -> int:
    return sum(1 for method, path in fake.requests
               if method == "GET" and path.startswith("/v1/subscriptions/"))


def test_a_repeated_event_is_processed_once(fake_stripe: FakeStripe, make_tenant: Any) -> None:
    tenant = make_tenant(plan="starter")
    sub = _subscribed(fake_stripe, tenant)
    event = fake_stripe.event("customer.subscription.created", fake_stripe.get(sub["id"]))
    assert post_event(event).status_code == 200
    reads = _subscription_reads(fake_stripe)
    assert post_event(event).status_code == 200
    assert Event.objects.filter(id=event["id"]).count() == 1
    assert _subscription_reads(fake_stripe) == reads
    tenant.refresh_from_db()
    assert tenant.plan == "standard"


def test_an_update_arriving_before_the_creation_ends_in_the_current_state(
    fake_stripe: FakeStripe, make_tenant: Any
) -> None:
    tenant = make_tenant(plan="starter")
    sub = _subscribed(fake_stripe, tenant, plan="standard")
    created = fake_stripe.event("customer.subscription.created", fake_stripe.get(sub["id"]))
    updated = fake_stripe.subscription_change(sub["id"], plan="premium")
    assert post_event(updated).status_code == 200
    assert post_event(created).status_code == 200
    tenant.refresh_from_db()
    assert tenant.plan == "premium"
    assert BillingAccount.objects.get(tenant=tenant).status == "active"


def test_an_old_active_event_after_a_newer_cancellation_does_not_revive(
    fake_stripe: FakeStripe, make_tenant: Any
) -> None:
    tenant = make_tenant(plan="starter")
    sub = _subscribed(fake_stripe, tenant)
    active = fake_stripe.event("customer.subscription.updated", fake_stripe.get(sub["id"]))
    canceled = fake_stripe.subscription_change(sub["id"], status="canceled")
    assert canceled["type"] == "customer.subscription.deleted"
    assert post_event(canceled).status_code == 200
    assert post_event(active).status_code == 200
    assert BillingAccount.objects.get(tenant=tenant).status == "canceled"


def test_an_older_observation_never_replaces_a_newer_one(
    fake_stripe: FakeStripe, make_tenant: Any
) -> None:
    tenant = make_tenant(plan="starter")
    sub = _subscribed(fake_stripe, tenant)
    newer = fake_stripe.get(sub["id"]) | {"status": "canceled"}
    older = fake_stripe.get(sub["id"])
    now = timezone.now()
    subscription_apply(data=newer, observed_at=now)
    subscription_apply(data=older, observed_at=now - timedelta(seconds=1))
    assert BillingAccount.objects.get(tenant=tenant).status == "canceled"


def test_a_late_event_about_an_older_subscription_keeps_the_newer_one(
    fake_stripe: FakeStripe, make_tenant: Any
) -> None:
    tenant = make_tenant(plan="starter")
    old = _subscribed(fake_stripe, tenant, plan="standard")
    old_event = fake_stripe.subscription_change(old["id"], status="canceled")
    new = fake_stripe.subscription_create(
        customer=old["customer"], plan="premium", metadata={"tenant_id": str(tenant.pk)},
        created=old["created"] + 60,
    )
    assert post_event(fake_stripe.event("customer.subscription.created",
                                        fake_stripe.get(new["id"]))).status_code == 200
    assert post_event(old_event).status_code == 200
    account = BillingAccount.objects.get(tenant=tenant)
    tenant.refresh_from_db()
    assert account.stripe_subscription_id == new["id"]
    assert (account.status, tenant.plan) == ("active", "premium")


def test_a_bad_signature_is_refused_and_nothing_is_processed(
    fake_stripe: FakeStripe, make_tenant: Any
) -> None:
    tenant = make_tenant(plan="starter")
    sub = _subscribed(fake_stripe, tenant)
    event = fake_stripe.event("customer.subscription.created", fake_stripe.get(sub["id"]))
    assert post_event(event, secret="whsec_someone_else").status_code == 400
    unsigned = Client().post("/stripe/webhook/", json.dumps(event),
                             content_type="application/json")
    assert unsigned.status_code == 400
    assert not Event.objects.exists() and not WebhookEventTrigger.objects.exists()
    assert not BillingAccount.objects.filter(tenant=tenant).exists()
    tenant.refresh_from_db()
    assert tenant.plan == "starter"


def test_a_stale_signature_is_refused(fake_stripe: FakeStripe, make_tenant: Any) -> None:
    tenant = make_tenant()
    sub = _subscribed(fake_stripe, tenant)
    payload = json.dumps(fake_stripe.event("customer.subscription.created",
                                           fake_stripe.get(sub["id"])))
    header = stripe.WebhookSignature.generate_signature_header(
        payload, WEBHOOK_SECRET, timestamp=int(time.time()) - 3600
    )
    response = Client().post("/stripe/webhook/", payload, content_type="application/json",
                             HTTP_STRIPE_SIGNATURE=header)
    assert response.status_code == 400
    assert not Event.objects.exists()


def test_unknown_event_types_are_acknowledged_and_ignored(
    fake_stripe: FakeStripe, make_tenant: Any
) -> None:
    tenant = make_tenant(plan="starter")
    event = fake_stripe.event("radar.early_fraud_warning.created",
                              {"id": "issfr_1", "object": "radar.early_fraud_warning"})
    assert post_event(event).status_code == 200
    assert not BillingAccount.objects.filter(tenant=tenant).exists()
    assert not [r for r in fake_stripe.requests if "/subscriptions/" in r[1]]


def test_a_failed_payment_makes_the_business_past_due(
    fake_stripe: FakeStripe, make_tenant: Any
) -> None:
    tenant = make_tenant(plan="starter")
    sub = _subscribed(fake_stripe, tenant)
    fake_stripe.subscription_change(sub["id"], status="past_due")
    failed = fake_stripe.event("invoice.payment_failed",
                               fake_stripe.invoice_for(sub["id"], paid=False))
    assert post_event(failed).status_code == 200
    account = BillingAccount.objects.get(tenant=tenant)
    assert account.status == "past_due" and account.past_due_since is not None


def test_webhooks_are_refused_when_no_secret_is_configured(
    fake_stripe: FakeStripe, make_tenant: Any, settings: Any
) -> None:
    tenant = make_tenant()
    sub = _subscribed(fake_stripe, tenant)
    settings.STRIPE_WEBHOOK_SECRET = ""
    event = fake_stripe.event("customer.subscription.created", fake_stripe.get(sub["id"]))
    assert post_event(event).status_code == 400
    assert not Event.objects.exists()
