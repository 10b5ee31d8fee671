"""Creating and migrating tenant databases.

A new tenant's database is a copy of a migrated template (milliseconds)
instead of a fresh migration run (seconds). The template is brought up to
date once per process, under a file lock so concurrent processes don't race.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from tenants.db import TEMPLATE_ALIAS, alias_for, template_db_path, tenant_db_dir, tenant_db_path

logger = logging.getLogger(__name__)

_template_lock = threading.Lock()
_template_ready_for: Path | None = None


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


def ensure_template() -> Path:
    """The migrated template database, migrating it first if the code moved on."""
    global _template_ready_for
    path = template_db_path()
    with _template_lock:
        if _template_ready_for == path and path.exists():
            return path
        with _file_lock(tenant_db_dir() / "_template.lock"):
            migrate_database(TEMPLATE_ALIAS)
            # Fold the WAL into the main file so a plain backup copy is complete.
            with sqlite3.connect(path) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
        _template_ready_for = path
        return path


def reset_template_cache() -> None:
    global _template_ready_for
    with _template_lock:
        _template_ready_for = None


def provision_database(tenant_id: uuid.UUID) -> Path:
    """Create the tenant's database as a verified copy of the template."""
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


def drop_database(tenant_id: uuid.UUID) -> None:
    """Remove a tenant's database files (used to undo a failed signup, and for deletion)."""
    connections.forget(alias_for(tenant_id))  # type: ignore[attr-defined]
    path = tenant_db_path(tenant_id)
    for suffix in ("", "-wal", "-shm", "-journal", ".partial"):
        Path(str(path) + suffix).unlink(missing_ok=True)
