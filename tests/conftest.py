from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache

from tenants.models import Tenant
from tenants.services import tenant_create

_counter = itertools.count(1)

MakeTenant = Callable[..., Tenant]


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Each test starts with empty rate-limit windows.

    The counters live in the process's memory cache, and many tests run at the
    same frozen instant: without this one test's logins or sign-ups would count
    against the next. A Redis cache (REDIS_URL set) is shared with other
    processes and is never flushed from here.
    """
    cache = caches["default"]
    if isinstance(cache, LocMemCache):
        cache.clear()
    yield


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
