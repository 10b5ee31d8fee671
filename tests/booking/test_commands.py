from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from booking.management.commands.seed_demo import DEMO_OWNER_EMAIL, DEMO_OWNER_PASSWORD
from booking.models import Appointment, Closure, Customer, Service, StaffMember, WaitlistEntry
from booking.services import appointment_book, appointment_cancel
from tenants.context import tenant_context
from tenants.models import Membership, Tenant
from tests.booking.conftest import MakeShop, ada, local


def report(slug: str) -> dict[str, Any]:
    out = StringIO()
    call_command("tenant_report", slug, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_report_has_the_contract_shape(make_shop: MakeShop, frozen: Any) -> None:
    shop = make_shop(plan="standard")
    with tenant_context(shop.tenant):
        kept = appointment_book(service_id=shop.services["Cleaning"],
                                start=local(2026, 3, 10, 9), staff_id=shop.staff["Ana"],
                                customer=ada(), channel="chat")
        gone = appointment_book(service_id=shop.services["Checkup"],
                                start=local(2026, 3, 11, 14), customer=ada("+12125550101"),
                                channel="phone")
        appointment_cancel(appointment=gone, by_customer=True)
        WaitlistEntry.objects.create(customer=kept.customer,
                                     service=Service.objects.get(name="Whitening"))

    data = report(shop.tenant.slug)
    assert set(data) == {"slug", "plan", "subscription_status", "features",
                         "appointments_this_month", "appointment_limit", "appointments",
                         "waitlist"}
    assert data["slug"] == shop.tenant.slug
    assert data["plan"] == "standard"
    assert data["subscription_status"] == "manual"
    assert data["features"] == ["chat", "waitlist"]
    assert data["appointments_this_month"] == 1  # the cancelled one does not count
    assert data["appointment_limit"] == 500
    assert data["appointments"][0] == {
        "reference": kept.reference, "service": "Cleaning", "staff": "Ana",
        "start": "2026-03-10T09:00:00-04:00", "end": "2026-03-10T10:00:00-04:00",
        "status": "booked", "channel": "chat", "customer_name": "Ada Lovelace",
        "customer_phone": "+12125550100",
    }
    assert data["appointments"][1]["status"] == "cancelled"
    assert data["appointments"][1]["channel"] == "phone"
    assert data["waitlist"] == [{"customer_name": "Ada Lovelace", "service": "Whitening",
                                 "status": "waiting"}]


def test_report_of_premium_business_is_unlimited(make_shop: MakeShop) -> None:
    shop = make_shop(plan="premium")
    data = report(shop.tenant.slug)
    assert data["appointment_limit"] is None
    assert data["features"] == ["chat", "phone", "waitlist"]
    assert data["appointments"] == [] and data["waitlist"] == []


def test_report_of_unknown_business_fails(db: None) -> None:
    with pytest.raises(CommandError):
        call_command("tenant_report", "nobody-here", "--json")


def test_seed_demo_twice_gives_one_demo_business(db: None) -> None:
    call_command("seed_demo", stdout=StringIO())
    tenant = Tenant.objects.get(slug="demo-dental")
    with tenant_context(tenant):
        first = {
            "services": list(Service.objects.values_list("pk", "name", "duration_minutes",
                                                         "price", "buffer_after_minutes")),
            "staff": list(StaffMember.objects.values_list("pk", "name")),
            "closures": Closure.objects.count(),
        }
        appointment_book(service_id=Service.objects.get(name="Checkup").pk,
                         start=local(2027, 1, 5, 10), customer=ada(), channel="web",
                         now=local(2027, 1, 4, 9))

    call_command("seed_demo", stdout=StringIO())
    assert Tenant.objects.filter(slug="demo-dental").count() == 1
    tenant = Tenant.objects.get(slug="demo-dental")
    assert (tenant.name, tenant.timezone, tenant.plan) == (
        "Bright Smile Dental", "America/New_York", "premium")
    with tenant_context(tenant):
        again = {
            "services": list(Service.objects.values_list("pk", "name", "duration_minutes",
                                                         "price", "buffer_after_minutes")),
            "staff": list(StaffMember.objects.values_list("pk", "name")),
            "closures": Closure.objects.count(),
        }
        assert Appointment.objects.count() == 1
        assert Customer.objects.count() == 1
    assert again == first
    assert [(name, minutes, str(price), after) for _, name, minutes, price, after
            in first["services"]] == [
        ("Cleaning", 60, "120.00", 10), ("Checkup", 30, "80.00", 0),
        ("Whitening", 90, "350.00", 0), ("Filling", 45, "180.00", 0),
    ]
    assert sorted(name for _, name in first["staff"]) == ["Dr. Lee", "Dr. Patel", "Hygienist Sam"]
    assert first["closures"] >= 1
    owner = User.objects.get(username=DEMO_OWNER_EMAIL)
    assert owner.check_password(DEMO_OWNER_PASSWORD)
    assert Membership.objects.filter(user=owner, tenant=tenant, role="owner").count() == 1


def test_demo_has_a_lunch_break_and_saturday_morning(db: None) -> None:
    call_command("seed_demo", stdout=StringIO())
    tenant = Tenant.objects.get(slug="demo-dental")
    out = StringIO()
    call_command("tenant_config", "demo-dental", "--export", stdout=out)
    setup = json.loads(out.getvalue())
    lee = next(m for m in setup["staff"] if m["name"] == "Dr. Lee")
    assert lee["hours"]["mon"] == [["09:00", "12:00"], ["13:00", "17:00"]]
    assert lee["hours"]["sat"] == [["09:00", "13:00"]]
    assert tenant.plan == "premium"


def test_print_login_shows_the_demo_owner(db: None) -> None:
    out = StringIO()
    call_command("seed_demo", "--print-login", stdout=out)
    assert DEMO_OWNER_EMAIL in out.getvalue() and DEMO_OWNER_PASSWORD in out.getvalue()
    assert not Tenant.objects.filter(slug="demo-dental").exists()
