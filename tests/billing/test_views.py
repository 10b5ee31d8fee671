from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from billing.models import BillingAccount
from tenants.models import Membership, Tenant
from tests.billing.conftest import NOW, post_event
from tests.fakes.stripe_server import FakeStripe

pytestmark = pytest.mark.django_db


def owner_client(tenant: Tenant) -> Client:
    client = Client()
    client.force_login(tenant.memberships.get(role=Membership.Role.OWNER).user)
    return client


def page_text(response: Any) -> str:
    import re

    html = re.sub(r"<(script|style)\b.*?</\1>", " ", response.content.decode(), flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_plan_page_says_billing_is_manual_without_stripe(make_tenant: Any) -> None:
    tenant = make_tenant(plan="standard")
    response = owner_client(tenant).get("/dashboard/billing/")
    assert response.status_code == 200
    text = page_text(response)
    assert "Standard" in text and "0 of 500" in text
    assert "Billing is managed manually" in text
    assert "Choose Premium" not in text


def test_the_plan_page_needs_a_membership(make_tenant: Any) -> None:
    make_tenant()
    stranger = get_user_model().objects.create_user("s@example.com", "s@example.com", "pw-9x!long")
    client = Client()
    client.force_login(stranger)
    assert client.get("/dashboard/billing/").status_code in {302, 403}
    assert Client().get("/dashboard/billing/").status_code == 302


def test_choosing_a_plan_opens_stripe_checkout_for_the_tenant(
    make_tenant: Any, fake_stripe: FakeStripe
) -> None:
    tenant = make_tenant(plan="starter")
    client = owner_client(tenant)
    page = page_text(client.get("/dashboard/billing/"))
    assert "Choose Premium" in page and "Manage billing" in page
    response = client.post("/dashboard/billing/checkout/", {"plan": "premium"})
    assert response.status_code == 302
    assert response["Location"].startswith("https://checkout.stripe.test/c/pay/cs_test_")
    session = fake_stripe.get(response["Location"].rsplit("/", 1)[-1])
    assert session["mode"] == "subscription"
    assert session["client_reference_id"] == str(tenant.pk)
    assert session["line_items_requested"] == [{"price": "price_premium", "quantity": "1"}]
    assert session["success_url"].startswith("http://testserver/dashboard/billing/success/")
    customer = fake_stripe.get(session["customer"])
    assert customer["metadata"] == {"tenant_id": str(tenant.pk)}
    assert BillingAccount.objects.get(tenant=tenant).stripe_customer_id == customer["id"]

    for event in fake_stripe.complete_checkout(session["id"]):
        assert post_event(event).status_code == 200
    assert client.get("/dashboard/billing/success/?session_id=x").status_code == 302
    text = page_text(client.get("/dashboard/billing/"))
    assert "Premium" in text and "Active" in text and "of unlimited" in text


def test_a_second_checkout_reuses_the_stripe_customer(
    make_tenant: Any, fake_stripe: FakeStripe
) -> None:
    tenant = make_tenant(plan="starter")
    client = owner_client(tenant)
    client.post("/dashboard/billing/checkout/", {"plan": "premium"})
    client.post("/dashboard/billing/checkout/", {"plan": "standard"})
    assert sum(1 for m, p in fake_stripe.requests if (m, p) == ("POST", "/v1/customers")) == 1


def test_changing_a_live_plan_goes_through_the_portal(
    make_tenant: Any, fake_stripe: FakeStripe
) -> None:
    tenant = make_tenant(plan="starter")
    client = owner_client(tenant)
    location = client.post("/dashboard/billing/checkout/", {"plan": "standard"})["Location"]
    for event in fake_stripe.complete_checkout(location.rsplit("/", 1)[-1]):
        post_event(event)
    response = client.post("/dashboard/billing/checkout/", {"plan": "premium"})
    assert response["Location"].startswith("https://billing.stripe.test/p/session/")
    portal = fake_stripe.get(response["Location"].rsplit("/", 1)[-1])
    assert portal["flow"]["type"] == "subscription_update"


def test_manage_billing_opens_the_portal(make_tenant: Any, fake_stripe: FakeStripe) -> None:
    tenant = make_tenant()
    response = owner_client(tenant).post("/dashboard/billing/portal/")
    assert response.status_code == 302
    portal = fake_stripe.get(response["Location"].rsplit("/", 1)[-1])
    assert portal["object"] == "billing_portal.session"
    assert portal["return_url"] == "http://testserver/dashboard/billing/"


def test_staff_members_cannot_change_the_plan(make_tenant: Any, fake_stripe: FakeStripe) -> None:
    tenant = make_tenant()
    staff = get_user_model().objects.create_user("st@example.com", "st@example.com", "pw-9x!long")
    Membership.objects.create(user=staff, tenant=tenant, role=Membership.Role.STAFF)
    client = Client()
    client.force_login(staff)
    assert client.get("/dashboard/billing/").status_code == 200
    assert client.post("/dashboard/billing/checkout/", {"plan": "premium"}).status_code == 403
    assert client.post("/dashboard/billing/portal/").status_code == 403
    assert not fake_stripe.requests


def test_checkout_without_stripe_says_billing_is_manual(make_tenant: Any) -> None:
    tenant = make_tenant()
    client = owner_client(tenant)
    response = client.post("/dashboard/billing/checkout/", {"plan": "premium"}, follow=True)
    assert "Billing is managed manually" in page_text(response)


def test_the_plan_page_warns_during_the_grace_period(make_tenant: Any, frozen: Any) -> None:
    tenant = make_tenant(plan="standard")
    BillingAccount.objects.create(tenant=tenant, stripe_subscription_id="sub_1",
                                  stripe_customer_id="cus_1", status="past_due",
                                  past_due_since=NOW - timedelta(days=2), last_synced_at=NOW)
    text = page_text(owner_client(tenant).get("/dashboard/billing/"))
    assert "Your last payment failed" in text and "online booking pauses" in text


def test_tenant_report_shows_the_subscription_status(make_tenant: Any) -> None:
    tenant = make_tenant(plan="standard")

    def report() -> dict[str, Any]:
        out = StringIO()
        call_command("tenant_report", tenant.slug, "--json", stdout=out)
        return dict(json.loads(out.getvalue()))

    assert report()["subscription_status"] == "manual"
    BillingAccount.objects.create(tenant=tenant, stripe_subscription_id="sub_1",
                                  stripe_customer_id="cus_1", status="past_due")
    assert report()["subscription_status"] == "past_due"


def test_every_dashboard_page_shows_the_past_due_banner(make_tenant: Any, frozen: Any) -> None:
    tenant = make_tenant(plan="standard")
    client = owner_client(tenant)
    assert "billing-notice" not in client.get("/dashboard/").content.decode()
    BillingAccount.objects.create(tenant=tenant, stripe_subscription_id="sub_1",
                                  stripe_customer_id="cus_1", status="past_due",
                                  past_due_since=NOW - timedelta(days=2), last_synced_at=NOW)
    response = client.get("/dashboard/")
    assert 'id="billing-notice"' in response.content.decode()
    assert "Your last payment failed" in page_text(response)
    BillingAccount.objects.filter(tenant=tenant).update(past_due_since=NOW - timedelta(days=9))
    assert "Online booking is paused" in page_text(client.get("/dashboard/"))


def test_the_platform_console_shows_mrr_by_plan_and_failed_payments(make_tenant: Any) -> None:
    paying = [make_tenant(plan="standard"), make_tenant(plan="standard")]
    late = make_tenant(plan="premium", name="Late Payer Salon")
    manual = make_tenant(plan="premium", name="Manual Spa")
    for i, tenant in enumerate(paying):
        BillingAccount.objects.create(tenant=tenant, stripe_subscription_id=f"sub_{i}",
                                      status="active")
    BillingAccount.objects.create(tenant=late, stripe_subscription_id="sub_late",
                                  status="past_due", past_due_since=NOW)
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw-9x!long")
    client = Client()
    client.force_login(root)
    response = client.get("/admin/billing/billingaccount/")
    assert response.status_code == 200
    mrr = {row["plan"]: (row["subscriptions"], str(row["mrr"]))
           for row in response.context["mrr_rows"]}
    assert mrr == {"Starter": (0, "0.00"), "Standard": (2, "199.98"), "Premium": (1, "150.99")}
    assert [a.tenant for a in response.context["failed_payments"]] == [late]
    assert "Manual Spa" in page_text(response)  # every business is listed
    assert BillingAccount.objects.get(tenant=manual).status == "manual"
    assert client.get("/admin/djstripe/event/").status_code == 200
    assert client.get("/admin/").status_code == 200


def test_returning_from_checkout_applies_the_plan_before_the_webhook(
    make_tenant: Any, fake_stripe: FakeStripe
) -> None:
    tenant = make_tenant(plan="starter")
    other = make_tenant(plan="starter")
    client = owner_client(tenant)
    location = client.post("/dashboard/billing/checkout/", {"plan": "premium"})["Location"]
    session_id = location.rsplit("/", 1)[-1]
    fake_stripe.complete_checkout(session_id)  # its events are not delivered yet
    # Another business cannot claim this checkout by replaying its id.
    owner_client(other).get(f"/dashboard/billing/success/?session_id={session_id}")
    other.refresh_from_db()
    assert other.plan == "starter"
    assert not BillingAccount.objects.filter(tenant=other).exclude(status="manual").exists()

    response = client.get(f"/dashboard/billing/success/?session_id={session_id}", follow=True)
    tenant.refresh_from_db()
    assert tenant.plan == "premium"
    assert BillingAccount.objects.get(tenant=tenant).status == "active"
    assert "Your payment went through" in page_text(response)
