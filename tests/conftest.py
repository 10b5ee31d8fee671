from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from tenants.models import Tenant
from tenants.services import tenant_create

_counter = itertools.count(1)

MakeTenant = Callable[..., Tenant]


@pytest.fixture
def make_tenant(db: None) -> MakeTenant:
    """Provision a business (control-plane rows + its own database file)."""

    def make(
        slug: str | None = None,
        *,
        name: str | None = None,
        timezone: str = "America/New_York",
        owner_email: str | None = None,
        owner_password: str | None = "correct-horse-battery-9",
        plan: str = "premium",
    ) -> Tenant:
        n = next(_counter)
        slug = slug or f"biz-{n}"
        return tenant_create(
            slug=slug,
            name=name or f"Business {n}",
            timezone=timezone,
            owner_email=owner_email or f"owner{n}@example.com",
            owner_password=owner_password,
            plan=plan,
        )

    return make
