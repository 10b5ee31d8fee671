from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from agent.facts import business_facts
from agent.tools import ToolRunner
from billing.entitlements import BookingPaused, ensure_can_book, has_feature
from billing.models import BillingAccount
from billing.plans import PHONE, WAITLIST
from booking.models import Appointment, Customer
from tenants.context import tenant_context
from tenants.models import Tenant
from tests.billing.conftest import NOW, MakeShop, Shop, local
from tests.fakes.stripe_server import FakeStripe

pytestmark = pytest.mark.django_db

TUESDAY = (2026, 3, 10)


def fill_month(shop: Shop, count: int) -> None:
    with tenant_context(shop.tenant):
        customer = Customer.objects.create(name="Regular", phone="+12125550199")
        start = local(2026, 3, 20, 9)
        Appointment.objects.bulk_create(
            Appointment(
                service_id=shop.services["Checkup"], staff_id=shop.staff["Ben"],
                customer=customer, start=start + timedelta(days=i),
                block_start=start + timedelta(days=i),
                end=start + timedelta(days=i, minutes=30),
                block_end=start + timedelta(days=i, minutes=30), channel="dashboard",
                reference=f"FILL{i:04d}",
            )
            for i in range(count)
        )


def api_book(shop: Shop, hour: int = 9) -> Any:
    body = {"service": shop.services["Checkup"], "start": local(*TUESDAY, hour).isoformat(),
            "name": "Ada Lovelace", "phone": "+12125550100", "staff": shop.staff["Ana"]}
    return Client().post(f"/api/b/{shop.tenant.slug}/appointments", json.dumps(body),
                         content_type="application/json")


def page_book(shop: Shop) -> Any:
    return Client().post(f"/b/{shop.tenant.slug}/book/", {
        "service": shop.services["Checkup"], "staff": "",
        "start": local(*TUESDAY, 9).isoformat(), "key": uuid.uuid4().hex, "name": "Ada Lovelace",
        "phone": "+1 212 555 0100", "email": "ada@example.com",
    })


def page_text(response: Any) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", response.content.decode(), flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def agent_book(shop: Shop) -> dict[str, Any]:
    with tenant_context(shop.tenant):
        runner = ToolRunner(channel="chat", now=NOW, facts=business_facts(now=NOW))
        offered = runner.run("check_availability", {"service": "Checkup", "date": "2026-03-10"})
        assert offered["slots"], offered
        slot = offered["slots"][0]
        return runner.run("create_appointment", {
            "service": "Checkup", "start": slot["start"], "name": "Ada Lovelace",
            "phone": "+12125550100",
        })


def booked(shop: Shop) -> int:
    with tenant_context(shop.tenant):
        return Appointment.objects.count()


def stripe_account(tenant: Tenant, **fields: Any) -> BillingAccount:
    defaults = {"stripe_customer_id": "cus_x", "stripe_subscription_id": "sub_x",
                "status": "active", "current_period_end": NOW + timedelta(days=20),
                "state_as_of": NOW, "last_synced_at": NOW}
    account, _ = BillingAccount.objects.update_or_create(tenant=tenant,
                                                         defaults=defaults | fields)
    return account


# --- monthly limit ----------------------------------------------------------------------------


def test_the_101st_booking_of_the_month_on_starter_is_refused_by_the_api(
    make_shop: MakeShop, frozen: Any
) -> None:
    shop = make_shop(plan="starter")
    fill_month(shop, 100)
    response = api_book(shop)
    assert response.status_code == 402
    assert response.json()["error"] == "plan_limit_reached"
    assert "100 bookings for this month on the Starter plan" in response.json()["detail"]
    assert booked(shop) == 100


def test_cancelled_appointments_leave_room_under_the_limit(
    make_shop: MakeShop, frozen: Any
) -> None:
    shop = make_shop(plan="starter")
    fill_month(shop, 100)
    with tenant_context(shop.tenant):
        Appointment.objects.filter(reference="FILL0000").update(status="cancelled")
    assert api_book(shop).status_code == 201


def test_the_101st_booking_on_starter_is_refused_on_the_booking_page(
    make_shop: MakeShop, frozen: Any
) -> None:
    shop = make_shop(plan="starter")
    fill_month(shop, 100)
    response = page_book(shop)
    assert response.status_code == 402
    assert "not taking more online bookings this month" in page_text(response)
    assert booked(shop) == 100


def test_the_101st_booking_on_starter_is_refused_to_the_assistant(
    make_shop: MakeShop, frozen: Any
) -> None:
    shop = make_shop(plan="starter")
    fill_month(shop, 100)
    result = agent_book(shop)
    assert result["ok"] is False and result["error"] == "plan_limit_reached"
    assert booked(shop) == 100


def test_the_waitlist_is_not_part_of_starter(make_shop: MakeShop, frozen: Any) -> None:
    shop = make_shop(plan="starter")
    with tenant_context(shop.tenant):
        runner = ToolRunner(channel="chat", now=NOW, facts=business_facts(now=NOW))
        result = runner.run("join_waitlist", {
            "service": "Checkup", "date": "2026-03-03", "end_date": "2026-03-04",
            "part_of_day": "morning", "name": "Ada Lovelace", "phone": "+12125550100",
        })
    assert result["ok"] is False and result["error"] == "feature_not_in_plan"
    assert not has_feature(shop.tenant, WAITLIST)


# --- subscription state -----------------------------------------------------------------------


def test_past_due_within_the_grace_period_still_books(
    make_shop: MakeShop, frozen: Any
) -> None:
    shop = make_shop(plan="standard")
    stripe_account(shop.tenant, status="past_due", past_due_since=NOW - timedelta(days=6))
    assert api_book(shop).status_code == 201


def test_past_due_beyond_the_grace_period_pauses_booking_on_every_channel(
    make_shop: MakeShop, frozen: Any
) -> None:
    shop = make_shop(plan="standard")
    stripe_account(shop.tenant, status="past_due", past_due_since=NOW - timedelta(days=8))
    response = api_book(shop)
    assert response.status_code == 403
    assert response.json()["error"] == "booking_paused"
    assert "not taking bookings online at the moment" in response.json()["detail"]
    page = page_book(shop)
    assert page.status_code == 403
    assert "not taking bookings online at the moment" in page_text(page)
    result = agent_book(shop)
    assert result["ok"] is False and result["error"] == "booking_paused"
    assert booked(shop) == 0


def test_the_grace_period_is_a_setting(make_shop: MakeShop, frozen: Any, settings: Any) -> None:
    settings.BILLING_PAST_DUE_GRACE_DAYS = 2
    shop = make_shop(plan="standard")
    stripe_account(shop.tenant, status="past_due", past_due_since=NOW - timedelta(days=3))
    assert api_book(shop).status_code == 403


def test_a_cancelled_subscription_books_until_its_period_ends(
    make_shop: MakeShop, frozen: Any
) -> None:
    shop = make_shop(plan="standard")
    stripe_account(shop.tenant, status="canceled", current_period_end=NOW + timedelta(days=1))
    assert api_book(shop).status_code == 201
    frozen.move_to(NOW + timedelta(days=1, minutes=1))
    with pytest.raises(BookingPaused):
        ensure_can_book(shop.tenant, booked_this_month=1)


def test_unpaid_pauses_booking(make_shop: MakeShop, frozen: Any) -> None:
    shop = make_shop(plan="standard")
    stripe_account(shop.tenant, status="unpaid")
    assert api_book(shop).status_code == 403


# --- manual billing ---------------------------------------------------------------------------


def test_platform_staff_set_the_plan_when_billing_is_manual(
    make_shop: MakeShop, frozen: Any
) -> None:
    shop = make_shop(plan="starter")
    assert not has_feature(shop.tenant, PHONE)
    staff = get_user_model().objects.create_superuser("root", "root@example.com", "pw-9x!long")
    client = Client()
    client.force_login(staff)
    listing = client.get("/admin/billing/billingaccount/")
    assert listing.status_code == 200
    assert "billing is manual" in page_text(listing)
    response = client.post("/admin/billing/billingaccount/", {
        "action": "set_plan_premium", "_selected_action": [str(shop.tenant.pk)],
    })
    assert response.status_code == 302
    tenant = Tenant.objects.get(pk=shop.tenant.pk)
    assert tenant.plan == "premium" and has_feature(tenant, PHONE)
    fill_month(shop, 150)
    assert api_book(shop).status_code == 201  # premium has no monthly limit


def test_owners_cannot_reach_the_platform_billing_console(make_shop: MakeShop) -> None:
    shop = make_shop()
    client = Client()
    client.force_login(shop.tenant.memberships.get().user)
    assert client.get("/admin/billing/billingaccount/").status_code == 302


# --- reconcile on read ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_stale_state_is_refreshed_from_stripe_when_checked(
    make_shop: MakeShop, frozen: Any, fake_stripe: FakeStripe
) -> None:
    shop = make_shop(plan="standard")
    customer = fake_stripe.customer_create({"metadata": {"tenant_id": str(shop.tenant.pk)}})
    sub = fake_stripe.subscription_create(customer=customer["id"], plan="standard")
    fake_stripe.subscription_change(sub["id"], status="unpaid")
    stripe_account(shop.tenant, stripe_customer_id=customer["id"],
                   stripe_subscription_id=sub["id"], status="active",
                   last_synced_at=NOW - timedelta(days=2), state_as_of=NOW - timedelta(days=2))
    with pytest.raises(BookingPaused):
        ensure_can_book(shop.tenant, booked_this_month=0)
    assert BillingAccount.objects.get(tenant=shop.tenant).status == "unpaid"


@pytest.mark.django_db(transaction=True)
def test_a_booking_with_stale_state_refreshes_after_its_transaction(
    make_shop: MakeShop, frozen: Any, fake_stripe: FakeStripe
) -> None:
    shop = make_shop(plan="standard")
    customer = fake_stripe.customer_create({"metadata": {"tenant_id": str(shop.tenant.pk)}})
    sub = fake_stripe.subscription_create(customer=customer["id"], plan="standard")
    fake_stripe.subscription_change(sub["id"], status="unpaid")
    stripe_account(shop.tenant, stripe_customer_id=customer["id"],
                   stripe_subscription_id=sub["id"], status="active",
                   last_synced_at=NOW - timedelta(days=2), state_as_of=NOW - timedelta(days=2))
    # The booking engine checks inside its write transaction, where no Stripe call
    # is made: this booking goes by the last known state, the next one by Stripe's.
    assert api_book(shop, hour=9).status_code == 201
    assert BillingAccount.objects.get(tenant=shop.tenant).status == "unpaid"
    assert api_book(shop, hour=10).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_an_overdue_renewal_is_reread(
    make_shop: MakeShop, frozen: Any, fake_stripe: FakeStripe
) -> None:
    shop = make_shop(plan="standard")
    customer = fake_stripe.customer_create({"metadata": {"tenant_id": str(shop.tenant.pk)}})
    sub = fake_stripe.subscription_create(customer=customer["id"], plan="premium")
    stripe_account(shop.tenant, stripe_customer_id=customer["id"],
                   stripe_subscription_id=sub["id"], status="active",
                   current_period_end=NOW - timedelta(minutes=1),
                   last_synced_at=NOW - timedelta(hours=1), state_as_of=NOW - timedelta(hours=1))
    ensure_can_book(shop.tenant, booked_this_month=0)
    shop.tenant.refresh_from_db()
    assert shop.tenant.plan == "premium"
    account = BillingAccount.objects.get(tenant=shop.tenant)
    assert account.current_period_end is not None and account.current_period_end > NOW


def test_fresh_state_is_not_reread(
    make_shop: MakeShop, frozen: Any, fake_stripe: FakeStripe
) -> None:
    shop = make_shop(plan="standard")
    stripe_account(shop.tenant, last_synced_at=NOW - timedelta(minutes=5))
    assert api_book(shop).status_code == 201
    assert not [r for r in fake_stripe.requests if "/subscriptions/" in r[1]]


@pytest.mark.django_db(transaction=True)
def test_unreachable_stripe_keeps_the_last_known_state(
    make_shop: MakeShop, frozen: Any, fake_stripe: FakeStripe, settings: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from billing import stripe_api

    shop = make_shop(plan="standard", name="Secret Name Dental")
    stripe_account(shop.tenant, last_synced_at=NOW - timedelta(days=2))
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens on the discard port
    stripe_api.configure()
    with caplog.at_level(logging.WARNING, logger="billing"):
        ensure_can_book(shop.tenant, booked_this_month=0)
    account = BillingAccount.objects.get(tenant=shop.tenant)
    assert account.status == "active" and account.last_synced_at == NOW - timedelta(days=2)
    assert "keeping the last known state" in caplog.text
    assert "Secret Name" not in caplog.text
