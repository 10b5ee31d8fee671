from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from booking.config import config_import
from booking.models import Service, StaffMember
from booking.services import CustomerDetails, customer_details_clean
from tenants.context import tenant_context
from tenants.models import Tenant
from tests.conftest import MakeTenant

NY = ZoneInfo("America/New_York")
# A Monday, well before the dates the tests book, so every slot is in the future.
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

WEEKDAY_HOURS = [["09:00", "12:00"], ["13:00", "17:00"]]
BASE_SETUP: dict[str, Any] = {
    "name": "Test Dental",
    "timezone": "America/New_York",
    "policy": {
        "slot_step_minutes": 15,
        "min_notice_minutes": 60,
        "max_days_ahead": 60,
        "cancellation_notice_minutes": 120,
        "reminder_offsets_minutes": [1440, 120],
        "waitlist_hold_minutes": 15,
    },
    "services": [
        {"name": "Cleaning", "duration_minutes": 60, "price": "120.00",
         "buffer_before_minutes": 0, "buffer_after_minutes": 10, "description": "Polish"},
        {"name": "Checkup", "duration_minutes": 30, "price": "80.00",
         "buffer_before_minutes": 0, "buffer_after_minutes": 0, "description": ""},
        {"name": "Whitening", "duration_minutes": 90, "price": "350.00",
         "buffer_before_minutes": 0, "buffer_after_minutes": 0, "description": ""},
    ],
    "staff": [
        {"name": "Ana", "services": ["Cleaning", "Checkup", "Whitening"],
         "hours": dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), WEEKDAY_HOURS)
         | {"sun": [["09:00", "12:00"]]}},
        {"name": "Ben", "services": ["Checkup", "Whitening"],
         "hours": dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), WEEKDAY_HOURS)},
    ],
    "closures": [
        {"start": "2026-03-13T00:00", "end": "2026-03-14T00:00", "staff": None,
         "reason": "Training day"},
    ],
}


def base_setup() -> dict[str, Any]:
    return copy.deepcopy(BASE_SETUP)


def local(*args: int) -> datetime:
    """A wall-clock time at the test business (America/New_York)."""
    return datetime(*args, tzinfo=NY)  # type: ignore[misc]


@dataclass
class Shop:
    tenant: Tenant
    services: dict[str, int]
    staff: dict[str, int]


MakeShop = Callable[..., Shop]


@pytest.fixture
def make_shop(make_tenant: MakeTenant) -> MakeShop:
    def make(setup: dict[str, Any] | None = None, **tenant_kwargs: Any) -> Shop:
        tenant = make_tenant(**tenant_kwargs)
        with tenant_context(tenant):
            config_import(setup or base_setup())
            services = dict(Service.objects.values_list("name", "pk"))
            staff = dict(StaffMember.objects.values_list("name", "pk"))
        return Shop(tenant=tenant, services=services, staff=staff)

    return make


@pytest.fixture
def frozen() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def shop(make_shop: MakeShop, frozen: time_machine.Traveller) -> Iterator[Shop]:
    """A business with the base setup, active as the tenant in context, at NOW."""
    created = make_shop()
    with tenant_context(created.tenant):
        yield created


def ada(phone: str = "+12125550100") -> CustomerDetails:
    return customer_details_clean(name="Ada Lovelace", phone=phone, email="ada@example.com")
