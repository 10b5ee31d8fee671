"""Bringing the template and every tenant database up to date, several at a time.

Migrating a tenant database (a SQLite file, or a PostgreSQL database) is
mostly Python work, so threads would queue on the GIL: tenants are spread over
a pool of forked processes instead. The parent reads the tenant list from the
control plane and hands each child only ``(tenant id, slug)``; a child touches
nothing but tenant databases, through connections it opens itself.

Most of that Python work is Django computing the model state before and after
each operation (re-rendering models), which is the same for every tenant at
the same point of history. So each process computes those states once per
(applied migrations, plan) and replays only the database side for every
tenant: the same calls Django's executor makes, without the repeated
rendering. Plans Django handles specially (backwards, squashed) take Django's
own path.
"""

from __future__ import annotations

import logging
import multiprocessing
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, cast

from asgiref.local import Local
from django.db import DatabaseError, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.migration import Migration
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState

from tenants.db import TenantConnectionHandler, alias_for, tenant_db_path, tenants_on_postgres
from tenants.provisioning import database_exists, template_update, tenant_migration_targets

logger = logging.getLogger(__name__)

_REASON_MAX_CHARS = 200

# One entry per (applied migrations, plan) this process has met; see module doc.
_PlanKey = tuple[frozenset[tuple[str, str]], tuple[tuple[str, str], ...]]
_Step = tuple[Operation, ProjectState, ProjectState]  # operation, state before, state after
_plan_steps: dict[_PlanKey, list[tuple[Migration, list[_Step]]]] = {}

# Connections a forked child inherited from its parent. Kept referenced so they
# are never finalised in the child: closing a server connection there would end
# the parent's session, and a SQLite handle must not cross a fork.
_inherited_connections: list[Any] = []


@dataclass(frozen=True)
class TenantOutcome:
    tenant_id: uuid.UUID
    slug: str
    applied: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def short_reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    reason = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    if len(reason) > _REASON_MAX_CHARS:
        reason = reason[: _REASON_MAX_CHARS - 3] + "..."
    return reason


def migrate_template() -> int:
    """Migrate the template (under its lock); returns how many migrations ran."""
    return template_update()


def migrate_tenant(tenant_id: uuid.UUID, slug: str) -> TenantOutcome:
    """Migrate one tenant database; any failure is reported, never raised."""
    handler = cast(TenantConnectionHandler, connections)
    alias = alias_for(tenant_id)
    on_postgres = tenants_on_postgres()
    # Checked first so a lost file reads as such, not as SQLite's "unable to open".
    if not on_postgres and not tenant_db_path(tenant_id).exists():
        return TenantOutcome(tenant_id, slug, error="database file is missing")
    try:
        applied = migrate_tenant_database(alias)
    except Exception as exc:
        # On PostgreSQL asked only after a failure: one more connection per tenant otherwise.
        if on_postgres and _known_missing(tenant_id):
            return TenantOutcome(tenant_id, slug, error="database is missing")
        logger.warning("migrating tenant database %s failed", tenant_id, exc_info=True)
        return TenantOutcome(tenant_id, slug, error=short_reason(exc))
    finally:
        handler.forget(alias)
    return TenantOutcome(tenant_id, slug, applied=applied)


def _known_missing(tenant_id: uuid.UUID) -> bool:
    try:
        return not database_exists(tenant_id)
    except DatabaseError:  # the server itself is unreachable: report the original failure
        return False


def migrate_tenant_database(alias: str) -> int:
    """Apply every unapplied migration to ``alias``; returns how many ran.

    Same result as ``tenants.provisioning.migrate_database``, faster when many
    databases share a plan (see module doc).
    """
    connection = connections[alias]
    try:
        executor = MigrationExecutor(connection)
        targets = tenant_migration_targets(executor)
        plan = executor.migration_plan(targets)
        if not plan:
            return 0
        if any(backwards or migration.replaces for migration, backwards in plan):
            executor.migrate(targets, plan=plan)
            return len(plan)
        key = (
            frozenset(executor.loader.applied_migrations),
            tuple((migration.app_label, migration.name) for migration, _ in plan),
        )
        if key not in _plan_steps:
            _plan_steps[key] = _compute_steps(executor, plan)
        executor.recorder.ensure_schema()
        for migration, steps in _plan_steps[key]:
            _apply(executor, migration, steps)
        executor.check_replacements()
        return len(plan)
    finally:
        connection.close()


def _compute_steps(
    executor: MigrationExecutor, plan: list[tuple[Migration, bool]]
) -> list[tuple[Migration, list[_Step]]]:
    """The states Django's executor would pass to each operation of ``plan``."""
    graph = executor.loader.graph
    applied = {graph.nodes[key] for key in executor.loader.applied_migrations if key in graph.nodes}
    # As MigrationExecutor._create_project_state(with_applied_migrations=True).
    full_plan = executor.migration_plan(graph.leaf_nodes(), clean_start=True)
    state = ProjectState(real_apps=executor.loader.unmigrated_apps)
    for migration, _ in full_plan:
        if migration in applied:
            migration.mutate_state(state, preserve=False)
    state.apps  # noqa: B018 - render once, as the executor does before the first migration
    # As MigrationExecutor._migrate_all_forwards and Migration.apply.
    to_run = {migration for migration, _ in plan}
    result: list[tuple[Migration, list[_Step]]] = []
    for migration, _ in full_plan:
        if migration not in to_run:
            continue
        steps: list[_Step] = []
        for operation in migration.operations:
            before = state.clone()
            operation.state_forwards(migration.app_label, state)
            steps.append((operation, before, state.clone()))
        result.append((migration, steps))
    return result


def _apply(executor: MigrationExecutor, migration: Migration, steps: list[_Step]) -> None:
    """MigrationExecutor.apply_migration + Migration.apply, on precomputed states."""
    connection = executor.connection
    recorded = False
    with connection.schema_editor(atomic=migration.atomic) as schema_editor:
        for operation, before, after in steps:
            atomic_operation = operation.atomic or (
                migration.atomic and operation.atomic is not False
            )
            if not schema_editor.atomic_migration and atomic_operation:
                with transaction.atomic(connection.alias):
                    operation.database_forwards(migration.app_label, schema_editor, before, after)
            else:
                operation.database_forwards(migration.app_label, schema_editor, before, after)
        if not schema_editor.deferred_sql:
            executor.recorder.record_applied(migration.app_label, migration.name)
            recorded = True
    if not recorded:  # recorded once the deferred SQL has run
        executor.recorder.record_applied(migration.app_label, migration.name)


def migrate_tenants(
    tenants: Sequence[tuple[uuid.UUID, str]], *, parallel: int
) -> Iterator[TenantOutcome]:
    """Migrate each ``(id, slug)``; outcomes arrive in completion order."""
    workers = min(parallel, len(tenants))
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        try:
            for tenant_id, slug in tenants:
                yield migrate_tenant(tenant_id, slug)
        finally:
            _plan_steps.clear()  # a long-lived process must not keep the states
        return

    _close_connections()
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_detach_inherited_connections,
    )
    try:
        futures = {
            pool.submit(migrate_tenant, tenant_id, slug): (tenant_id, slug)
            for tenant_id, slug in tenants
        }
        for future in as_completed(futures):
            try:
                yield future.result()
            except BrokenProcessPool as exc:
                # A worker died (killed, out of memory): its tenants are reported as failed.
                tenant_id, slug = futures[future]
                yield TenantOutcome(tenant_id, slug, error=f"worker process died ({exc})")
    finally:
        # When interrupted (Ctrl-C), finish the tenants in progress but start no more.
        pool.shutdown(wait=True, cancel_futures=True)


def _close_connections() -> None:
    # The children get a copy of this process; no open handle may go with it.
    # A connection inside a transaction cannot be closed without breaking it;
    # children never use those anyway (see _detach_inherited_connections).
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close()


def _detach_inherited_connections() -> None:
    handler = cast(TenantConnectionHandler, connections)
    _inherited_connections.append(handler._connections)
    handler._connections = Local(handler.thread_critical)
