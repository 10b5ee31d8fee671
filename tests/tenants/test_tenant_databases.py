from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import close_old_connections, connections

from booking.models import BusinessProfile
from tenants.context import NoTenantInContext, current_tenant_or_none, tenant_context
from tenants.db import alias_for, tenant_db_path
from tenants.router import CrossTenantAccess
from tests.conftest import MakeTenant


def test_tenant_rows_live_only_in_their_own_database(make_tenant: MakeTenant) -> None:
    alpha, beta = make_tenant(), make_tenant()
    with tenant_context(alpha):
        BusinessProfile.objects.create(display_name="Alpha Dental")
    with tenant_context(beta):
        assert BusinessProfile.objects.count() == 0
        BusinessProfile.objects.create(display_name="Beta Salon")
    with tenant_context(alpha):
        assert list(BusinessProfile.objects.values_list("display_name", flat=True)) == [
            "Alpha Dental"
        ]
    assert tenant_db_path(alpha.pk).exists() and tenant_db_path(beta.pk).exists()


def test_tenant_model_without_tenant_in_context_raises(db: None) -> None:
    with pytest.raises(NoTenantInContext):
        BusinessProfile.objects.count()
    with pytest.raises(NoTenantInContext):
        BusinessProfile.objects.create(display_name="Nowhere")


def test_tenant_tables_are_not_in_the_control_plane(db: None) -> None:
    tables = connections["default"].introspection.table_names()
    assert "booking_businessprofile" not in tables
    assert "tenants_tenant" in tables


def test_control_tables_are_not_in_tenant_databases(make_tenant: MakeTenant) -> None:
    tenant = make_tenant()
    with tenant_context(tenant):
        tables = connections[alias_for(tenant.pk)].introspection.table_names()
    assert "booking_businessprofile" in tables
    assert "tenants_tenant" not in tables and "auth_user" not in tables


def test_context_restores_previous_tenant(make_tenant: MakeTenant) -> None:
    alpha, beta = make_tenant(), make_tenant()
    assert current_tenant_or_none() is None
    with tenant_context(alpha):
        with tenant_context(beta):
            assert current_tenant_or_none() == beta
        assert current_tenant_or_none() == alpha
    assert current_tenant_or_none() is None


def test_context_is_restored_after_an_exception(make_tenant: MakeTenant) -> None:
    alpha = make_tenant()
    with pytest.raises(ZeroDivisionError), tenant_context(alpha):
        1 / 0
    assert current_tenant_or_none() is None


def test_object_from_one_tenant_cannot_be_saved_into_another(make_tenant: MakeTenant) -> None:
    alpha, beta = make_tenant(), make_tenant()
    with tenant_context(alpha):
        profile = BusinessProfile.objects.create(display_name="Alpha")
    with tenant_context(beta), pytest.raises(CrossTenantAccess):
        profile.save()
    with tenant_context(beta):
        assert BusinessProfile.objects.count() == 0


def test_context_does_not_leak_into_other_threads(make_tenant: MakeTenant) -> None:
    alpha = make_tenant()
    seen: list[object] = []
    with tenant_context(alpha):
        worker = threading.Thread(target=lambda: seen.append(current_tenant_or_none()))
        worker.start()
        worker.join()
    assert seen == [None]


@pytest.mark.django_db(transaction=True)
def test_context_follows_async_code_both_ways(make_tenant: MakeTenant) -> None:
    alpha, beta = make_tenant(), make_tenant()
    with tenant_context(alpha):
        BusinessProfile.objects.create(display_name="Alpha")

    def count_profiles() -> int:
        return BusinessProfile.objects.count()

    async def in_tenant(tenant: object) -> tuple[int, int]:
        with tenant_context(tenant):  # type: ignore[arg-type]
            via_db = await database_sync_to_async(count_profiles)()
            via_sync = await sync_to_async(count_profiles)()
            return via_db, via_sync

    async def both() -> list[tuple[int, int]]:
        return list(await asyncio.gather(in_tenant(alpha), in_tenant(beta)))

    assert asyncio.run(both()) == [(1, 1), (0, 0)]


def test_scans_only_see_open_tenant_connections(make_tenant: MakeTenant) -> None:
    tenants = [make_tenant() for _ in range(5)]
    for tenant in tenants:
        with tenant_context(tenant):
            BusinessProfile.objects.exists()
    open_aliases = {c.alias for c in connections.all(initialized_only=True)}
    assert {alias_for(t.pk) for t in tenants} <= open_aliases
    # Request end closes tenant connections; the next scan forgets them.
    close_old_connections()
    remaining = {c.alias for c in connections.all(initialized_only=True)}
    assert not any(alias.startswith("tenant_") and alias != "tenant_template"
                   for alias in remaining)
    assert "tenant_" + tenants[0].pk.hex not in connections.settings


def test_missing_tenant_file_is_an_error_not_a_new_database(make_tenant: MakeTenant) -> None:
    tenant = make_tenant()
    path = tenant_db_path(tenant.pk)
    connections.forget(alias_for(tenant.pk))  # type: ignore[attr-defined]
    path.unlink()
    with tenant_context(tenant), pytest.raises(Exception, match="unable to open"):
        BusinessProfile.objects.count()
    assert not path.exists()


def test_tenant_connection_settings_match_the_house_rules(make_tenant: MakeTenant) -> None:
    tenant = make_tenant()
    with tenant_context(tenant):
        conn = connections[alias_for(tenant.pk)]
        with conn.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
            cursor.execute("PRAGMA foreign_keys")
            assert cursor.fetchone()[0] == 1
        assert conn.settings_dict["ATOMIC_REQUESTS"] is False
        assert conn.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
        # Every key Django fills in for configured aliases is present.
        assert set(connections["default"].settings_dict) <= set(conn.settings_dict)
