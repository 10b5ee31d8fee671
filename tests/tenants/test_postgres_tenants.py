"""Tenant databases on PostgreSQL (TENANT_DATABASE_URL): one database per business.

Runs against the PostgreSQL server on 127.0.0.1:5432 (user postgres, trust
auth). Every database this module creates carries a random prefix and is
dropped at the end, so parallel runs never meet.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings

from booking.errors import Closed
from booking.models import Appointment, BusinessProfile, Closure
from booking.selectors import appointments_all
from booking.services import (
    CustomerDetails,
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
)
from tenants.context import tenant_context
from tenants.db import alias_for, is_tenant_alias, template_pg_name, tenant_pg_name
from tenants.lifecycle import LifecycleError, tenant_backup, tenant_delete, tenant_restore
from tenants.provisioning import database_exists, pending_migrations
from tests.booking import conftest as booking_fixtures
from tests.booking.conftest import NOW, MakeShop, Shop, base_setup, local
from tests.booking.test_concurrency import race
from tests.conftest import MakeTenant

make_shop = booking_fixtures.make_shop
frozen = booking_fixtures.frozen

SERVER = "postgresql://postgres@127.0.0.1:5432"
# Each racer holds one connection; the server allows 100 in all, shared.
RACERS = 12
TUESDAY = (2026, 3, 10)


def server() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(f"{SERVER}/postgres", autocommit=True, connect_timeout=5)


def databases_like(prefix: str) -> set[str]:
    with server() as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", [prefix]
        ).fetchall()
    return {str(name) for (name,) in rows}


def drop_databases(names: set[str]) -> None:
    def drop(name: str) -> None:
        with server() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # Each DROP DATABASE waits for a checkpoint; dropped together they share one.
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(drop, names))


@pytest.fixture(scope="module", autouse=True)
def pg_prefix() -> Iterator[str]:
    """TENANT_DATABASE_URL for the whole module, its databases dropped afterwards."""
    prefix = f"sst_{secrets.token_hex(4)}_"
    override = override_settings(TENANT_DATABASE_URL=f"{SERVER}/{prefix}{{id}}")
    override.enable()
    try:
        yield prefix
    finally:
        forget_tenant_connections()  # none may outlive the setting they were made with
        override.disable()
        drop_databases(databases_like(prefix))


@pytest.fixture(autouse=True)
def _close_tenant_connections() -> Iterator[None]:
    # Tests touch many tenants; an idle connection to each would pile up on the server.
    yield
    forget_tenant_connections()


def forget_tenant_connections() -> None:
    for conn in connections.all(initialized_only=True):
        if is_tenant_alias(conn.alias):
            connections.forget(conn.alias)  # type: ignore[attr-defined]


def book(shop: Shop, start: datetime, *, staff: str | None = "Ana", i: int = 0,
         key: str | None = None) -> Appointment:
    # Each racing thread enters the tenant context itself: contextvars do not cross threads.
    with tenant_context(shop.tenant):
        return appointment_book(
            service_id=shop.services["Checkup"],
            start=start,
            staff_id=shop.staff[staff] if staff else None,
            customer=CustomerDetails(name=f"Customer {i}", phone=f"+1212555{1000 + i:04d}"),
            channel=Appointment.Channel.WEB,
            idempotency_key=key,
            now=NOW,
        )


def outcomes(results: list[object]) -> Counter[str]:
    return Counter("ok" if isinstance(r, Appointment) else type(r).__name__ for r in results)


# --- provisioning and isolation --------------------------------------------------------


def test_each_business_gets_its_own_postgres_database_and_sees_only_its_rows(
    make_shop: MakeShop, pg_prefix: str
) -> None:
    alpha, beta = make_shop(), make_shop()
    names = {tenant_pg_name(shop.tenant.id) for shop in (alpha, beta)}
    assert names == {f"{pg_prefix}{shop.tenant.id.hex}" for shop in (alpha, beta)}
    assert databases_like(pg_prefix) >= names | {template_pg_name()}
    connection = connections[alias_for(alpha.tenant.id)]
    assert connection.vendor == "postgresql"
    assert pending_migrations(alias_for(alpha.tenant.id)) == []
    tables = connection.introspection.table_names()
    assert "booking_appointment" in tables
    assert "tenants_tenant" not in tables and "auth_user" not in tables

    booked = book(alpha, local(*TUESDAY, 9))
    with tenant_context(beta.tenant):
        assert Appointment.objects.count() == 0
        assert not Appointment.objects.filter(reference=booked.reference).exists()
    with tenant_context(alpha.tenant):
        assert [a.reference for a in appointments_all()] == [booked.reference]
    # Read past the router: the rows are in alpha's database and nowhere else.
    for shop, expected in ((alpha, 1), (beta, 0)):
        with psycopg.connect(f"{SERVER}/{tenant_pg_name(shop.tenant.id)}") as conn:
            row = conn.execute("SELECT count(*) FROM booking_appointment").fetchone()
        assert row == (expected,)


# --- the cached catalogue --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_catalogue_writes_in_bulk_reach_the_next_booking(make_shop: MakeShop,
                                                         frozen: object) -> None:
    """PostgreSQL's statement triggers replace the catalogue version as SQLite's do."""
    shop = make_shop()
    book(shop, local(*TUESDAY, 9))  # the process now holds the catalogue
    with tenant_context(shop.tenant):
        before = BusinessProfile.objects.values_list("catalog_version", flat=True).get()
        Closure.objects.bulk_create([
            Closure(start=local(*TUESDAY, 11), end=local(*TUESDAY, 12), reason="Meeting")
        ])
        assert BusinessProfile.objects.values_list("catalog_version", flat=True).get() != before
    with pytest.raises(Closed):
        book(shop, local(*TUESDAY, 11))
    with tenant_context(shop.tenant):
        Closure.objects.all().delete()
    assert book(shop, local(*TUESDAY, 11)).start == local(*TUESDAY, 11)


# --- no double booking: real threads, one connection each -------------------------------


@pytest.mark.django_db(transaction=True)
def test_racing_customers_get_one_booking_of_a_slot(make_shop: MakeShop, frozen: object) -> None:
    shop = make_shop()
    start = local(*TUESDAY, 9)
    results = race(RACERS, lambda i: book(shop, start, i=i))
    assert outcomes(results) == {"ok": 1, "SlotTaken": RACERS - 1}
    with tenant_context(shop.tenant):
        assert Appointment.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_any_staff_race_books_each_person_once(make_shop: MakeShop, frozen: object) -> None:
    shop = make_shop()
    start = local(*TUESDAY, 9)
    results = race(RACERS, lambda i: book(shop, start, staff=None, i=i))
    assert outcomes(results) == {"ok": 2, "SlotTaken": RACERS - 2}
    winners = [r for r in results if isinstance(r, Appointment)]
    assert sorted(w.staff_id for w in winners) == sorted(shop.staff.values())


@pytest.mark.django_db(transaction=True)
def test_racing_reschedules_into_one_slot_move_one_appointment(
    make_shop: MakeShop, frozen: object
) -> None:
    shop = make_shop()
    moving = [book(shop, local(*TUESDAY, 10) + timedelta(minutes=30 * k), i=k) for k in range(4)]
    target = local(*TUESDAY, 9)

    def move(i: int) -> Appointment:
        with tenant_context(shop.tenant):
            return appointment_reschedule(appointment=moving[i], new_start=target,
                                          staff_id=shop.staff["Ana"], by_customer=False, now=NOW)

    results = race(len(moving), move)
    assert outcomes(results) == {"ok": 1, "SlotTaken": len(moving) - 1}
    with tenant_context(shop.tenant):
        assert Appointment.objects.filter(start=target).count() == 1


@pytest.mark.django_db(transaction=True)
def test_racing_retries_with_one_idempotency_key_get_the_same_booking(
    make_shop: MakeShop, frozen: object
) -> None:
    shop = make_shop()
    start = local(*TUESDAY, 9)
    results = race(RACERS, lambda i: book(shop, start, key="retry-1"))
    assert outcomes(results) == {"ok": RACERS}
    assert len({r.reference for r in results if isinstance(r, Appointment)}) == 1


# --- migrate_tenants ---------------------------------------------------------------------


def _step_back_one_booking_migration(alias: str) -> None:
    """Leave the database one booking migration behind, as after a deploy that adds one."""
    executor = MigrationExecutor(connections[alias])
    graph = executor.loader.graph
    leaf = next(node for node in graph.leaf_nodes() if node[0] == "booking")
    parents = sorted(p for p in graph.node_map[leaf].parents if p[0] == "booking")
    target = parents[-1] if parents else ("booking", None)
    executor.migrate([target], plan=executor.migration_plan([target]))
    connections[alias].close()


def test_migrate_tenants_brings_postgres_tenants_up_to_date(make_tenant: MakeTenant) -> None:
    behind, gone = make_tenant(slug="pg-behind"), make_tenant(slug="pg-gone")
    _step_back_one_booking_migration(alias_for(behind.id))
    assert pending_migrations(alias_for(behind.id)) != []
    drop_databases({tenant_pg_name(gone.id)})

    out = io.StringIO()
    with pytest.raises(CommandError, match="1 tenant database"):
        call_command("migrate_tenants", "--parallel", "2", stdout=out)

    report = out.getvalue()
    assert "template ... ok (0 applied)" in report
    assert "pg-behind ... ok" in report
    assert "pg-gone ... FAILED: database is missing" in report
    assert "1 of 2 tenant databases up to date, 1 migrations applied" in report
    assert pending_migrations(alias_for(behind.id)) == []


# --- backups, restores, deletion ---------------------------------------------------------


def test_backup_then_restore_brings_back_the_backed_up_state(
    make_shop: MakeShop, tmp_path: Path
) -> None:
    shop = make_shop()
    kept = book(shop, local(*TUESDAY, 9))
    backup = tenant_backup(tenant=shop.tenant, dest=tmp_path)
    assert backup.suffix == ".dump" and backup.read_bytes().startswith(b"PGDMP")

    with tenant_context(shop.tenant):
        appointment_cancel(appointment=kept, by_customer=False, now=NOW)
    later = book(shop, local(*TUESDAY, 10), i=1)

    tenant_restore(tenant=shop.tenant, source=backup)
    with tenant_context(shop.tenant):
        state = {(a.reference, a.status) for a in appointments_all()}
    assert state == {(kept.reference, Appointment.Status.BOOKED)}
    assert later.reference not in {ref for ref, _ in state}
    assert databases_like(tenant_pg_name(shop.tenant.id)) == {tenant_pg_name(shop.tenant.id)}


def test_restore_refuses_a_sqlite_file_garbage_or_another_schema_and_keeps_the_live_data(
    make_shop: MakeShop, tmp_path: Path
) -> None:
    shop = make_shop()
    kept = book(shop, local(*TUESDAY, 9))
    sqlite_backup = tmp_path / "old.sqlite3"
    sqlite_backup.write_bytes(b"SQLite format 3\x00" + bytes(100))
    garbage = tmp_path / "garbage.dump"
    garbage.write_bytes(b"PGDMP" + secrets.token_bytes(200))
    # A dump that does not record the latest booking migration, as from older code.
    with connections[alias_for(shop.tenant.id)].cursor() as cursor:
        cursor.execute("SELECT id, app, name, applied FROM django_migrations "
                       "WHERE app = 'booking' ORDER BY id DESC LIMIT 1")
        latest = cursor.fetchone()
        cursor.execute("DELETE FROM django_migrations WHERE id = %s", [latest[0]])
        stale = tenant_backup(tenant=shop.tenant, dest=tmp_path / "stale")
        cursor.execute("INSERT INTO django_migrations (id, app, name, applied) "
                       "VALUES (%s, %s, %s, %s)", latest)

    with pytest.raises(LifecycleError, match="SQLite backup"):
        tenant_restore(tenant=shop.tenant, source=sqlite_backup)
    with pytest.raises(LifecycleError, match="pg_restore failed"):
        tenant_restore(tenant=shop.tenant, source=garbage)
    with pytest.raises(LifecycleError, match=f"missing booking.{latest[2]}"):
        tenant_restore(tenant=shop.tenant, source=stale)

    with tenant_context(shop.tenant):
        assert [a.reference for a in appointments_all()] == [kept.reference]
    name = tenant_pg_name(shop.tenant.id)
    assert databases_like(name) == {name}  # no staged copy left behind


def test_delete_drops_the_database(make_shop: MakeShop) -> None:
    shop = make_shop()
    book(shop, local(*TUESDAY, 9))
    name = tenant_pg_name(shop.tenant.id)
    assert databases_like(name) == {name}

    tenant_delete(tenant=shop.tenant)
    assert databases_like(name) == set()
    assert not database_exists(shop.tenant.id)
    tenant_delete(tenant=shop.tenant)  # again: nothing left, nothing fails


# --- the whole installation on PostgreSQL, as an operator runs it ----------------------


def _next_weekday_at_ten(days_ahead: int = 3) -> str:
    day = datetime.now().date() + timedelta(days=days_ahead)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return f"{day.isoformat()}T10:00:00"


def test_control_plane_and_tenants_on_postgres_via_commands(
    pg_prefix: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "smartscheduler.settings_test",
        "DATABASE_URL": f"{SERVER}/{pg_prefix}control",
        "TENANT_DATABASE_URL": f"{SERVER}/{pg_prefix}{{id}}",
        "VAR_DIR": str(tmp_path / "var"),
    }
    with server() as conn:
        conn.execute(f'CREATE DATABASE "{pg_prefix}control"')

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, env=env,
            capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    # settings_test builds dj-stripe's tables from its models (--run-syncdb); on
    # PostgreSQL their foreign keys need auth's tables to exist first.
    manage("migrate", "auth", "--verbosity", "0")
    manage("migrate", "--run-syncdb", "--verbosity", "0")
    manage("create_tenant", "--slug", "pg-dental", "--name", "PG Dental",
           "--timezone", "America/New_York", "--owner-email", "owner@pg.example",
           "--plan", "premium")
    start = _next_weekday_at_ten()
    zone = "ZoneInfo('America/New_York')"
    booking = (
        "import json\n"
        "from datetime import datetime\n"
        "from zoneinfo import ZoneInfo\n"
        "from booking.config import config_import\n"
        "from booking.models import Service\n"
        "from booking.services import CustomerDetails, appointment_book\n"
        "from tenants.context import tenant_context\n"
        "from tenants.models import Tenant\n"
        "with tenant_context(Tenant.objects.get(slug='pg-dental')):\n"
        f"    config_import(json.loads({json.dumps(json.dumps(base_setup()))}))\n"
        "    a = appointment_book(service_id=Service.objects.get(name='Checkup').pk,\n"
        f"        start=datetime.fromisoformat('{start}').replace(tzinfo={zone}),\n"
        "        customer=CustomerDetails(name='Ada Lovelace', phone='+12125550100'),\n"
        "        channel='web')\n"
        "    print(a.reference)\n"
    )
    reference = manage("shell", "--no-imports", "--command", booking).strip()
    report = json.loads(manage("tenant_report", "pg-dental", "--json"))

    assert report["slug"] == "pg-dental" and report["plan"] == "premium"
    assert [(a["reference"], a["status"], a["customer_name"]) for a in report["appointments"]] == [
        (reference, "booked", "Ada Lovelace")
    ]
    assert report["appointments"][0]["start"].startswith(start)
    with psycopg.connect(f"{SERVER}/{pg_prefix}control") as conn:
        tenant_id = conn.execute(
            "SELECT id FROM tenants_tenant WHERE slug = 'pg-dental'"
        ).fetchone()
    assert tenant_id is not None
    assert f"{pg_prefix}{tenant_id[0].hex}" in databases_like(pg_prefix)
