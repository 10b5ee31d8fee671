"""Creating and migrating tenant databases.

A new tenant's database is a copy of a migrated template (milliseconds)
instead of a fresh migration run (seconds). The template is brought up to
date once per process, under a lock so concurrent processes don't race: a
file lock beside SQLite files; on PostgreSQL an advisory lock on the server,
held exclusively while the template migrates and shared while
``CREATE DATABASE ... TEMPLATE`` copies it (PostgreSQL refuses to copy a
database that anyone is connected to).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from django.conf import settings
from django.db import connections
from django.db.backends.utils import CursorWrapper
from django.db.migrations.executor import MigrationExecutor

from tenants.db import (
    PG_RESTORE_SUFFIXES,
    TEMPLATE_ALIAS,
    TenantConnectionHandler,
    alias_for,
    postgres_server_cursor,
    template_db_path,
    template_pg_name,
    tenant_db_dir,
    tenant_db_path,
    tenant_pg_name,
    tenants_on_postgres,
)

logger = logging.getLogger(__name__)

_template_lock = threading.Lock()
# The template (file path or database name) this process has brought up to date.
_template_ready_for: str | None = None


class ProvisioningError(RuntimeError):
    pass


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def tenant_migration_targets(executor: MigrationExecutor) -> list[tuple[str, str]]:
    """The latest migration of each tenant app: all a tenant database needs.

    Targeting every app's leaf would also replay the state of the control
    plane's apps (dj-stripe's alone costs a minute of model rendering) for
    tables that never exist in a tenant database.
    """
    return [
        node for node in executor.loader.graph.leaf_nodes() if node[0] in settings.TENANT_APPS
    ]


def pending_migrations(alias: str) -> list[str]:
    executor = MigrationExecutor(connections[alias])
    plan = executor.migration_plan(tenant_migration_targets(executor))
    return [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]


def migrate_database(alias: str) -> int:
    """Apply every unapplied migration to ``alias``; returns how many ran."""
    connection = connections[alias]
    try:
        executor = MigrationExecutor(connection)
        targets = tenant_migration_targets(executor)
        plan = executor.migration_plan(targets)
        if plan:
            executor.migrate(targets, plan=plan)
        return len(plan)
    finally:
        connection.close()


def _template_key() -> str:
    return template_pg_name() if tenants_on_postgres() else str(template_db_path())


def quote_pg_name(cursor: CursorWrapper, name: str) -> str:
    return str(cursor.db.ops.quote_name(name))


def pg_database_exists(cursor: CursorWrapper, name: str) -> bool:
    cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
    return cursor.fetchone() is not None


def pg_drop_database(cursor: CursorWrapper, name: str) -> None:
    # FORCE ends other sessions on it (PostgreSQL 13+): whoever used it is done with it.
    cursor.execute(f"DROP DATABASE IF EXISTS {quote_pg_name(cursor, name)} WITH (FORCE)")


@contextmanager
def _pg_template_lock(cursor: CursorWrapper, *, shared: bool) -> Iterator[None]:
    # Keyed by the template's name: installations sharing a server don't wait on each other.
    digest = hashlib.blake2b(template_pg_name().encode(), digest_size=8).digest()
    key = int.from_bytes(digest, "big", signed=True)
    kind = "_shared" if shared else ""
    cursor.execute(f"SELECT pg_advisory_lock{kind}(%s)", [key])
    try:
        yield
    finally:
        cursor.execute(f"SELECT pg_advisory_unlock{kind}(%s)", [key])


def _migrate_template_now() -> int:
    handler = cast(TenantConnectionHandler, connections)
    # A wrapper left from before holds the settings it was made with, which
    # need not be today's (a test switching TENANT_DATABASE_URL, say).
    handler.forget(TEMPLATE_ALIAS)
    if tenants_on_postgres():
        name = template_pg_name()
        with postgres_server_cursor() as cursor, _pg_template_lock(cursor, shared=False):
            if not pg_database_exists(cursor, name):
                cursor.execute(
                    f"CREATE DATABASE {quote_pg_name(cursor, name)} TEMPLATE template0 "
                    "ENCODING 'UTF8'"
                )
            try:
                return migrate_database(TEMPLATE_ALIAS)
            finally:
                # No connection may stay on the template, or copying it fails.
                handler.forget(TEMPLATE_ALIAS)
    path = template_db_path()
    with _file_lock(tenant_db_dir() / "_template.lock"):
        applied = migrate_database(TEMPLATE_ALIAS)
        # Fold the WAL into the main file so a plain backup copy is complete.
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    return applied


def _ensure_template_current() -> None:
    global _template_ready_for
    key = _template_key()
    with _template_lock:
        if _template_ready_for == key and (tenants_on_postgres() or template_db_path().exists()):
            return
        _migrate_template_now()
        _template_ready_for = key


def template_update() -> int:
    """Migrate the template now, whatever this process saw before; returns how many ran."""
    global _template_ready_for
    with _template_lock:
        _template_ready_for = None  # the code may have moved on
        applied = _migrate_template_now()
        _template_ready_for = _template_key()
    return applied


def ensure_template() -> Path:
    """The migrated SQLite template file, migrating it first if the code moved on."""
    if tenants_on_postgres():
        raise ProvisioningError("tenant databases are on PostgreSQL: there is no template file")
    _ensure_template_current()
    return template_db_path()


def reset_template_cache() -> None:
    global _template_ready_for
    with _template_lock:
        _template_ready_for = None


def provision_database(tenant_id: uuid.UUID) -> Path | str:
    """Create the tenant's database as a verified copy of the template.

    Returns the SQLite file, or the PostgreSQL database's name.
    """
    if tenants_on_postgres():
        return _provision_postgres(tenant_id)
    template = ensure_template()
    dest = tenant_db_path(tenant_id)
    if dest.exists():
        raise ProvisioningError(f"database for tenant {tenant_id} already exists")
    partial = dest.with_name(dest.name + ".partial")
    try:
        source = sqlite3.connect(f"file:{template}?mode=ro", uri=True)
        target = sqlite3.connect(partial)
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file to rename
            _verify_copy(source, target)
        finally:
            source.close()
            target.close()
        os.replace(partial, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    logger.info("provisioned tenant database %s", tenant_id)
    return dest


def _verify_copy(source: sqlite3.Connection, target: sqlite3.Connection) -> None:
    if target.execute("PRAGMA quick_check").fetchone()[0] != "ok":
        raise ProvisioningError("copied tenant database failed its integrity check")
    query = "SELECT app, name FROM django_migrations ORDER BY app, name"
    if source.execute(query).fetchall() != target.execute(query).fetchall():
        raise ProvisioningError("copied tenant database does not match the template")


def _provision_postgres(tenant_id: uuid.UUID) -> str:
    _ensure_template_current()
    name = tenant_pg_name(tenant_id)
    with postgres_server_cursor() as cursor, _pg_template_lock(cursor, shared=True):
        if pg_database_exists(cursor, name):
            raise ProvisioningError(f"database for tenant {tenant_id} already exists")
        # One statement: PostgreSQL creates the whole copy or nothing.
        cursor.execute(
            f"CREATE DATABASE {quote_pg_name(cursor, name)} "
            f"TEMPLATE {quote_pg_name(cursor, template_pg_name())}"
        )
    logger.info("provisioned tenant database %s", tenant_id)
    return name


def database_exists(tenant_id: uuid.UUID) -> bool:
    """Whether the tenant's database (SQLite file or PostgreSQL database) exists."""
    if tenants_on_postgres():
        with postgres_server_cursor() as cursor:
            return pg_database_exists(cursor, tenant_pg_name(tenant_id))
    return tenant_db_path(tenant_id).exists()


def drop_database(tenant_id: uuid.UUID) -> None:
    """Remove a tenant's database (used to undo a failed signup, and for deletion)."""
    connections.forget(alias_for(tenant_id))  # type: ignore[attr-defined]
    if tenants_on_postgres():
        name = tenant_pg_name(tenant_id)
        with postgres_server_cursor() as cursor:
            for database in (name, *(name + suffix for suffix in PG_RESTORE_SUFFIXES)):
                pg_drop_database(cursor, database)
        return
    path = tenant_db_path(tenant_id)
    for suffix in ("", "-wal", "-shm", "-journal", ".partial"):
        Path(str(path) + suffix).unlink(missing_ok=True)
