"""Each business's audit log: what is recorded, and who may read it."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import SYSTEM, audit_record
from booking.models import Appointment, Closure, Customer, Service
from booking.services import appointment_book
from tenants.context import tenant_context
from tenants.models import Membership, Tenant
from tests.booking.conftest import MakeShop, Shop, ada, local

pytestmark = pytest.mark.django_db

ACTIVITY = "/dashboard/activity/"
TUESDAY = (2026, 3, 10)


def owner_of(tenant: Tenant) -> User:
    return tenant.memberships.get(role=Membership.Role.OWNER).user


def entries(tenant: Tenant) -> list[AuditEntry]:
    with tenant_context(tenant):
        return list(AuditEntry.objects.all())


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def platform_staff(email: str = "root@platform.test") -> User:
    return User.objects.create_superuser(email, email, "a-long-platform-password-9")


@pytest.fixture
def biz(make_shop: MakeShop, frozen: time_machine.Traveller) -> Shop:
    return make_shop(name="Alpha Dental")


@pytest.fixture
def other(make_shop: MakeShop, frozen: time_machine.Traveller) -> Shop:
    return make_shop(name="Beta Salon")


def service_form(service: Service, **overrides: Any) -> dict[str, Any]:
    return {
        "name": service.name, "description": service.description,
        "duration_minutes": service.duration_minutes, "price": str(service.price),
        "buffer_before_minutes": service.buffer_before_minutes,
        "buffer_after_minutes": service.buffer_after_minutes,
        "active": "on" if service.active else "", "position": service.position,
    } | overrides


def edit_checkup_price(client: Client, shop: Shop, price: str) -> None:
    pk = shop.services["Checkup"]
    with tenant_context(shop.tenant):
        service = Service.objects.get(pk=pk)
    response = client.post(f"/dashboard/booking/service/{pk}/change/",
                           service_form(service, price=price))
    assert response.status_code == 302, response.content


# --- dashboard changes ---------------------------------------------------------------------


def test_a_dashboard_service_edit_is_logged_with_the_changed_field(biz: Shop) -> None:
    owner = owner_of(biz.tenant)
    edit_checkup_price(logged_in(owner), biz, "95.00")

    [entry] = entries(biz.tenant)
    assert entry.action == AuditEntry.Action.CHANGE
    assert (entry.object_type, entry.object_id, entry.object_label) == (
        "service", str(biz.services["Checkup"]), "Checkup")
    assert entry.changes == [{"field": "price", "old": "80.00", "new": "95.00"}]
    assert (entry.actor, entry.actor_user_id, entry.actor_is_platform_staff) == (
        owner.email, owner.pk, False)
    assert entry.at == timezone.now()

    page = logged_in(owner).get(ACTIVITY).content.decode()
    assert "price: 80.00 → 95.00" in page
    assert owner.email in page


def test_adding_and_deleting_in_the_dashboard_are_logged(biz: Shop) -> None:
    client = logged_in(owner_of(biz.tenant))
    response = client.post("/dashboard/booking/closure/add/", {
        "start_0": "2026-04-01", "start_1": "00:00", "end_0": "2026-04-02", "end_1": "00:00",
        "staff": "", "reason": "Inventory",
    })
    assert response.status_code == 302, response.content
    with tenant_context(biz.tenant):
        closure = Closure.objects.get(reason="Inventory")
    response = client.post(f"/dashboard/booking/closure/{closure.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302

    deleted, added = entries(biz.tenant)
    assert (added.action, added.object_type, added.object_label) == (
        "create", "closure", "Inventory")
    assert {"field": "reason", "old": None, "new": "Inventory"} in added.changes
    assert (deleted.action, deleted.object_id) == ("delete", str(closure.pk))


def test_staff_hours_edited_inline_are_logged_with_the_staff_member(biz: Shop) -> None:
    client = logged_in(owner_of(biz.tenant))
    pk = biz.staff["Ben"]
    page = client.get(f"/dashboard/booking/staffmember/{pk}/change/")
    form = page.context["adminform"].form
    inline = page.context["inline_admin_formsets"][0].formset
    data: dict[str, Any] = {
        "name": "Ben Carter", "active": "on",
        "services": [str(s.pk) for s in form.initial["services"]],
        f"{inline.prefix}-TOTAL_FORMS": str(len(inline.forms)),
        f"{inline.prefix}-INITIAL_FORMS": str(inline.initial_form_count()),
        f"{inline.prefix}-MIN_NUM_FORMS": "0", f"{inline.prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, hours_form in enumerate(inline.forms):
        prefix = f"{inline.prefix}-{i}"
        if hours_form.instance.pk is None:
            continue
        data |= {f"{prefix}-id": hours_form.instance.pk,
                 f"{prefix}-staff": pk,
                 f"{prefix}-weekday": hours_form.instance.weekday,
                 f"{prefix}-start": f"{hours_form.instance.start:%H:%M}",
                 f"{prefix}-end": f"{hours_form.instance.end:%H:%M}"}
    data[f"{inline.prefix}-0-DELETE"] = "on"
    response = client.post(f"/dashboard/booking/staffmember/{pk}/change/", data)
    assert response.status_code == 302, response.context and response.context["errors"]

    [entry] = entries(biz.tenant)
    assert entry.object_label == "Ben Carter"
    assert {"field": "name", "old": "Ben", "new": "Ben Carter"} in entry.changes
    assert any("deleted" in change for change in entry.changes)


def test_customer_edits_are_logged_without_personal_details(biz: Shop) -> None:
    with tenant_context(biz.tenant):
        appointment_book(customer=ada(), service_id=biz.services["Checkup"],
                         start=local(*TUESDAY, 9), channel=Appointment.Channel.WEB)
        customer = Customer.objects.get()
    client = logged_in(owner_of(biz.tenant))
    response = client.post(f"/dashboard/booking/customer/{customer.pk}/change/",
                           {"name": "Augusta King", "email": "augusta@example.com"})
    assert response.status_code == 302, response.content

    [entry] = entries(biz.tenant)
    assert entry.object_label == f"customer #{customer.pk}"
    assert entry.changes == [{"field": "name", "redacted": True},
                             {"field": "email", "redacted": True}]
    stored = json.dumps([entry.object_label, entry.changes])
    for personal in ("Augusta", "Ada", "augusta@example.com", "ada@example.com", "+1212"):
        assert personal not in stored


def test_appointment_changes_from_the_dashboard_are_logged(biz: Shop) -> None:
    client = logged_in(owner_of(biz.tenant))
    response = client.post("/dashboard/booking/appointment/add/", {
        "service": biz.services["Checkup"], "staff": biz.staff["Ana"], "date": "2026-03-10",
        "time": "14:00", "name": "Grace Hopper", "phone": "(212) 555-0199",
        "email": "grace@example.com", "notes": "", "key": "0123456789abcdef0123456789abcdef",
    })
    assert response.status_code == 302, response.content
    with tenant_context(biz.tenant):
        appointment = Appointment.objects.get()
    client.post(f"/dashboard/booking/appointment/{appointment.pk}/reschedule/",
                {"date": "2026-03-10", "time": "15:00", "staff": biz.staff["Ben"]})
    client.post(f"/dashboard/booking/appointment/{appointment.pk}/outcome/",
                {"outcome": "cancel"})
    # Cancelling again changes nothing, so nothing more is logged.
    client.post(f"/dashboard/booking/appointment/{appointment.pk}/outcome/",
                {"outcome": "cancel"})

    cancelled, moved, booked = entries(biz.tenant)
    assert booked.action == "create"
    assert booked.object_label.startswith(appointment.reference)
    assert {"field": "staff", "old": None, "new": "Ana"} in booked.changes
    assert moved.action == "change"
    assert moved.changes == [
        {"field": "start", "old": "2026-03-10T18:00:00+00:00", "new": "2026-03-10T19:00:00+00:00"},
        {"field": "staff", "old": "Ana", "new": "Ben"},
    ]
    assert cancelled.action == "cancel"
    assert cancelled.changes == [{"field": "status", "old": "booked", "new": "cancelled"}]
    stored = json.dumps([[e.object_label, e.changes] for e in (booked, moved, cancelled)])
    assert "Grace" not in stored and "555" not in stored and "grace@" not in stored


# --- who may read it --------------------------------------------------------------------------


def test_an_owner_sees_only_their_own_business_log(biz: Shop, other: Shop) -> None:
    edit_checkup_price(logged_in(owner_of(biz.tenant)), biz, "95.00")
    edit_checkup_price(logged_in(owner_of(other.tenant)), other, "70.00")

    mine = logged_in(owner_of(biz.tenant)).get(ACTIVITY)
    assert mine.status_code == 200
    assert [e.changes[0]["new"] for e in mine.context["entries"]] == ["95.00"]
    theirs = logged_in(owner_of(other.tenant)).get(ACTIVITY)
    assert [e.changes[0]["new"] for e in theirs.context["entries"]] == ["70.00"]
    assert "95.00" not in theirs.content.decode()
    assert owner_of(biz.tenant).email not in theirs.content.decode()


def test_the_log_is_for_owners_only(biz: Shop) -> None:
    staff_user = User.objects.create_user("desk@example.com", "desk@example.com",
                                          "pw-long-enough-9")
    Membership.objects.create(user=staff_user, tenant=biz.tenant, role=Membership.Role.STAFF)
    desk = logged_in(staff_user)
    assert desk.get(ACTIVITY).status_code == 403
    assert ACTIVITY not in desk.get("/dashboard/").content.decode()
    assert ACTIVITY in logged_in(owner_of(biz.tenant)).get("/dashboard/").content.decode()

    stranger = logged_in(User.objects.create_user("nobody@example.com", "nobody@example.com",
                                                  "pw-long-enough-9"))
    assert stranger.get(ACTIVITY).status_code in (302, 403)
    anonymous = Client().get(ACTIVITY)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]


def test_the_log_pages_newest_first(biz: Shop, frozen: time_machine.Traveller) -> None:
    with tenant_context(biz.tenant):
        for n in range(60):
            frozen.shift(timedelta(minutes=1))
            audit_record(action="change", actor=SYSTEM, object_type="service", object_id=n,
                         label=f"Service {n}")
    client = logged_in(owner_of(biz.tenant))
    first = client.get(ACTIVITY)
    labels = [e.object_label for e in first.context["entries"]]
    assert labels[:2] == ["Service 59", "Service 58"] and len(labels) == 50
    second = client.get(ACTIVITY, {"page": 2})
    assert [e.object_label for e in second.context["entries"]][-1] == "Service 0"
    assert client.get(ACTIVITY, {"page": "junk"}).status_code == 200


# --- platform staff and the control plane ----------------------------------------------------


def test_platform_staff_entering_a_business_is_logged_once_per_visit(
    biz: Shop, other: Shop
) -> None:
    owner_client = logged_in(owner_of(biz.tenant))
    root = platform_staff()
    for shop in (biz, other):
        Membership.objects.create(user=root, tenant=shop.tenant, role=Membership.Role.STAFF)
    client = logged_in(root)
    client.get("/dashboard/")
    client.get("/dashboard/booking/service/")
    owner_client.get("/dashboard/")

    [entry] = entries(biz.tenant)
    assert entry.action == AuditEntry.Action.STAFF_ENTERED
    assert (entry.actor, entry.actor_user_id, entry.actor_is_platform_staff) == (
        root.email, root.pk, True)
    assert entries(other.tenant) == []
    assert "(platform staff)" in owner_client.get(ACTIVITY).content.decode()

    # Switching to the other business is entering it.
    client.post("/account/switch-business/", {"tenant": str(other.tenant.pk)})
    client.get("/dashboard/")
    assert [e.action for e in entries(other.tenant)] == ["staff_entered"]


def test_a_plan_change_in_the_platform_console_is_logged(
    biz: Shop, other: Shop, django_capture_on_commit_callbacks: Any
) -> None:
    root = platform_staff()
    from billing.models import BillingAccount

    account = BillingAccount.objects.create(tenant=biz.tenant)
    with django_capture_on_commit_callbacks(execute=True):
        response = logged_in(root).post("/admin/billing/billingaccount/", {
            "action": "set_plan_standard", "_selected_action": [str(account.pk)],
        })
    assert response.status_code == 302
    [entry] = entries(biz.tenant)
    assert entry.action == AuditEntry.Action.PLAN_CHANGE
    assert entry.changes == [{"field": "plan", "old": "premium", "new": "standard"}]
    assert (entry.actor, entry.actor_is_platform_staff) == (root.email, True)
    assert entries(other.tenant) == []


def test_a_status_change_in_the_platform_console_is_logged(
    biz: Shop, django_capture_on_commit_callbacks: Any
) -> None:
    root = platform_staff()
    client = logged_in(root)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/tenants/tenant/", {
            "action": "suspend", "_selected_action": [str(biz.tenant.pk)],
        })
        client.post("/admin/tenants/tenant/", {
            "action": "activate", "_selected_action": [str(biz.tenant.pk)],
        })
    activated, suspended = entries(biz.tenant)
    assert suspended.action == activated.action == AuditEntry.Action.STATUS_CHANGE
    assert suspended.changes == [{"field": "status", "old": "active", "new": "suspended"}]
    assert activated.changes == [{"field": "status", "old": "suspended", "new": "active"}]
    assert suspended.actor == root.email and suspended.actor_is_platform_staff


def test_editing_a_business_in_the_platform_console_logs_plan_and_status_apart(
    biz: Shop, django_capture_on_commit_callbacks: Any
) -> None:
    tenant = biz.tenant
    tenant.refresh_from_db()
    old_name = tenant.name
    client = logged_in(platform_staff())
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/tenants/tenant/{tenant.pk}/change/", {
            "name": "Alpha Dental Group", "slug": tenant.slug, "timezone": tenant.timezone,
            "plan": "starter", "status": "suspended", "phone_number": "",
            "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000",
        })
    assert response.status_code == 302, response.context and response.context["errors"]
    by_action = {e.action: e.changes for e in entries(tenant)}
    assert by_action == {
        "plan_change": [{"field": "plan", "old": "premium", "new": "starter"}],
        "status_change": [{"field": "status", "old": "active", "new": "suspended"}],
        "change": [{"field": "name", "old": old_name, "new": "Alpha Dental Group"}],
    }


def test_a_control_plane_change_is_not_logged_when_its_transaction_rolls_back(
    biz: Shop, django_capture_on_commit_callbacks: Any
) -> None:
    from django.db import transaction

    from tenants.services import tenant_set_status

    with (django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError),
          transaction.atomic()):
        tenant_set_status(tenant=biz.tenant, status=Tenant.Status.SUSPENDED)
        raise RuntimeError("rolled back")
    assert entries(biz.tenant) == []


def test_a_plan_change_from_stripe_is_logged_as_stripe(
    make_tenant: Any, fake_stripe: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from billing.services import checkout_start
    from tests.billing.conftest import post_event

    tenant = make_tenant(plan="starter")
    url = checkout_start(tenant=tenant, plan="standard", success_url="https://x.test/ok",
                         cancel_url="https://x.test/no")
    events = fake_stripe.complete_checkout(url.rsplit("/", 1)[-1])
    with django_capture_on_commit_callbacks(execute=True):
        for event in events:
            assert post_event(event).status_code == 200
    [entry] = entries(tenant)
    assert (entry.action, entry.actor, entry.actor_user_id, entry.actor_is_platform_staff) == (
        "plan_change", "stripe", None, False)
    assert entry.changes == [{"field": "plan", "old": "starter", "new": "standard"}]
