from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from tenants import provisioning
from tenants.db import TEMPLATE_ALIAS, alias_for, template_db_path, tenant_db_dir, tenant_db_path
from tenants.models import Membership, Tenant
from tenants.provisioning import (
    ProvisioningError,
    ensure_template,
    pending_migrations,
    provision_database,
    reset_template_cache,
)
from tenants.services import tenant_create
from tests.conftest import MakeTenant


def roll_back_latest_booking_migration(alias: str) -> list[str]:
    """Put a database where a deploy with a new booking migration finds it: one behind."""
    executor = MigrationExecutor(connections[alias])
    graph = executor.loader.graph
    leaf = next(node for node in graph.leaf_nodes() if node[0] == "booking")
    parents = sorted(p for p in graph.node_map[leaf].parents if p[0] == "booking")
    target = parents[-1] if parents else ("booking", None)
    plan = executor.migration_plan([target])
    executor.migrate([target], plan=plan)
    connections.forget(alias)  # type: ignore[attr-defined]
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


def pending(alias: str) -> list[str]:
    try:
        return pending_migrations(alias)
    finally:
        connections.forget(alias)  # type: ignore[attr-defined]


def rebuild_template() -> None:
    """Replace a template a test has damaged by a freshly migrated one."""
    connections.forget(TEMPLATE_ALIAS)  # type: ignore[attr-defined]
    path = template_db_path()
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    reset_template_cache()
    ensure_template()


@pytest.fixture
def template_restored(db: None) -> Iterator[None]:
    """For tests that damage the template: later tests get a good one again."""
    yield
    rebuild_template()


def read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def schema_and_migrations(path: Path) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    conn = read_only(path)
    try:
        schema = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
        applied = conn.execute(
            "SELECT app, name FROM django_migrations ORDER BY app, name"
        ).fetchall()
    finally:
        conn.close()
    return schema, applied


def tenant_files() -> set[str]:
    if not tenant_db_dir().exists():
        return set()
    return {p.name for p in tenant_db_dir().iterdir() if not p.name.startswith("_template")}


def test_new_database_is_a_verified_copy_of_the_template(make_tenant: MakeTenant) -> None:
    tenant = make_tenant()
    path = tenant_db_path(tenant.pk)

    assert schema_and_migrations(path) == schema_and_migrations(template_db_path())
    conn = read_only(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert ("booking_businessprofile",) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
        ).fetchall()
    finally:
        conn.close()
    assert pending(alias_for(tenant.pk)) == []


@pytest.mark.usefixtures("template_restored")
def test_stale_template_is_migrated_before_it_is_copied(db: None) -> None:
    ensure_template()
    removed = roll_back_latest_booking_migration(TEMPLATE_ALIAS)
    assert removed and pending(TEMPLATE_ALIAS) == removed
    reset_template_cache()  # as in a new process after a deploy

    tenant_id = uuid.uuid4()
    provision_database(tenant_id)

    assert pending(alias_for(tenant_id)) == []
    assert pending(TEMPLATE_ALIAS) == []


def test_existing_database_is_never_overwritten(db: None) -> None:
    tenant_id = uuid.uuid4()
    path = provision_database(tenant_id)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE precious (value TEXT)")
    conn.close()
    before = path.read_bytes()

    with pytest.raises(ProvisioningError, match="already exists"):
        provision_database(tenant_id)

    assert path.read_bytes() == before
    assert not Path(str(path) + ".partial").exists()


def test_copy_that_fails_its_check_leaves_no_file(db: None) -> None:
    tenant_id = uuid.uuid4()
    files_before = tenant_files()
    with mock.patch.object(
        provisioning, "_verify_copy", autospec=True,
        side_effect=ProvisioningError("copied tenant database failed its integrity check"),
    ), pytest.raises(ProvisioningError):
        provision_database(tenant_id)

    assert not tenant_db_path(tenant_id).exists()
    assert tenant_files() == files_before


def test_failed_provisioning_in_signup_leaves_no_rows_and_no_file(db: None) -> None:
    files_before = tenant_files()
    with mock.patch.object(
        provisioning, "_verify_copy", autospec=True,
        side_effect=ProvisioningError("copied tenant database does not match the template"),
    ), pytest.raises(ProvisioningError):
        tenant_create(
            slug="bright-smile", name="Bright Smile", timezone="America/New_York",
            owner_email="owner@example.com", owner_password="correct-horse-battery-9",
        )

    assert not Tenant.objects.exists()
    assert not User.objects.exists()
    assert not Membership.objects.exists()
    assert tenant_files() == files_before

