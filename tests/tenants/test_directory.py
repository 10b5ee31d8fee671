"""Per-process copies of tenant and billing rows (tenants.directory): reused, never stale for long.

A public request finds its business by slug without a control-plane query while
nothing changed; any save, the bulk updates the project makes, and a new
generation in the shared cache make the next request read afresh; a write that
bypasses all of them (hand-run SQL) is seen once the copy's TTL runs out.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext

from billing.models import BillingAccount
from billing.reconcile import account_recent
from billing.services import tenant_plan_set
from tenants import directory
from tenants.models import Tenant
from tests.conftest import MakeTenant


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fake = Clock()
    monkeypatch.setattr(directory.time, "monotonic", fake)
    yield fake


def tenant_reads(slug: str) -> int:
    with CaptureQueriesContext(connections["default"]) as queries:
        directory.public_tenant_by_slug(slug)
    return sum('"tenants_tenant"' in q["sql"] for q in queries.captured_queries)


def test_a_slug_is_read_once_while_nothing_changes(make_tenant: MakeTenant, clock: Clock) -> None:
    tenant = make_tenant("copy-dental")
    assert tenant_reads("copy-dental") == 1
    assert tenant_reads("copy-dental") == 0
    first = directory.public_tenant_by_slug("copy-dental")
    second = directory.public_tenant_by_slug("copy-dental")
    assert first is not None and second is not None
    assert (first.pk, first.name, first.status) == (tenant.pk, tenant.name, tenant.status)
    first.name = "Changed by a caller"
    assert second.name == tenant.name  # each caller gets an instance of its own


def test_an_unknown_slug_is_remembered_until_a_business_is_created(
    make_tenant: MakeTenant, clock: Clock
) -> None:
    assert directory.public_tenant_by_slug("later-dental") is None
    assert tenant_reads("later-dental") == 0
    make_tenant("later-dental")
    found = directory.public_tenant_by_slug("later-dental")
    assert found is not None and found.slug == "later-dental"


def test_a_suspension_saved_anywhere_closes_the_public_pages_at_once(
    make_tenant: MakeTenant, clock: Clock
) -> None:
    tenant = make_tenant("pause-dental")
    client = Client()
    assert client.get("/b/pause-dental/").status_code == 200
    tenant.status = Tenant.Status.SUSPENDED
    tenant.save(update_fields=["status"])
    assert client.get("/b/pause-dental/").status_code == 403


def test_a_plan_change_written_in_bulk_is_seen_at_once(
    make_tenant: MakeTenant, clock: Clock
) -> None:
    tenant = make_tenant("plan-dental", plan="starter")
    assert directory.public_tenant_by_slug("plan-dental").plan == "starter"  # type: ignore[union-attr]
    tenant_plan_set(tenant=tenant, plan="premium")
    assert directory.public_tenant_by_slug("plan-dental").plan == "premium"  # type: ignore[union-attr]


def test_a_new_generation_from_another_process_is_obeyed(
    make_tenant: MakeTenant, clock: Clock
) -> None:
    make_tenant("shared-dental")
    directory.public_tenant_by_slug("shared-dental")
    # Another process changed the row by hand and replaced the shared token.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE tenants_tenant SET name = %s WHERE slug = %s",
                       ["Renamed Dental", "shared-dental"])
    assert directory.public_tenant_by_slug("shared-dental").name != "Renamed Dental"  # type: ignore[union-attr]
    cache.set(directory.GENERATION_KEY, "from-another-process")
    assert directory.public_tenant_by_slug("shared-dental").name == "Renamed Dental"  # type: ignore[union-attr]


def test_a_write_no_one_announced_is_seen_when_the_copy_expires(
    make_tenant: MakeTenant, clock: Clock
) -> None:
    make_tenant("quiet-dental")
    directory.public_tenant_by_slug("quiet-dental")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE tenants_tenant SET status = %s WHERE slug = %s",
                       [Tenant.Status.SUSPENDED, "quiet-dental"])
    clock.now += directory.DIRECTORY_TTL_SECONDS - 0.1
    assert directory.public_tenant_by_slug("quiet-dental").is_active  # type: ignore[union-attr]
    clock.now += 0.2
    assert not directory.public_tenant_by_slug("quiet-dental").is_active  # type: ignore[union-attr]


def test_without_a_cache_every_lookup_reads_the_database(
    make_tenant: MakeTenant, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tenant("outage-dental")

    def down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("cache unreachable")

    monkeypatch.setattr(directory.cache, "get", down)
    assert tenant_reads("outage-dental") == 1
    assert tenant_reads("outage-dental") == 1
    assert Client().get("/b/outage-dental/").status_code == 200


def test_billing_accounts_follow_their_saves(make_tenant: MakeTenant, clock: Clock) -> None:
    tenant = make_tenant("billing-dental")
    account, _ = BillingAccount.objects.get_or_create(tenant=tenant)
    assert account_recent(tenant).status == account.status  # type: ignore[union-attr]
    account.status = BillingAccount.Status.UNPAID
    account.save()
    assert account_recent(tenant).status == BillingAccount.Status.UNPAID  # type: ignore[union-attr]
