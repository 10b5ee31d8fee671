"""A tenant's data over its life: backups, restores, exports and deletion.

Backups use SQLite's online backup API on a read-only connection: in WAL mode
a reader sees one committed snapshot while bookings keep being written, so the
copy is consistent without stopping the business. Every copy is
integrity-checked before it counts as a backup, and every file a restore would
install is checked the same way before the live database is touched.

Tenants on PostgreSQL (``TENANT_DATABASE_URL``) are backed up with ``pg_dump``
(one consistent snapshot, custom format, read back with ``pg_restore --list``
before it counts) and restored with ``pg_restore`` into a new database that is
checked, then swapped in by renaming; deletion drops the database.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connections, transaction
from django.db.backends.postgresql.client import DatabaseClient
from django.db.migrations.executor import MigrationExecutor
from django.db.models import QuerySet
from django.utils import timezone

from tenants.context import tenant_context
from tenants.db import (
    PG_RESTORE_SUFFIXES,
    TenantConnectionHandler,
    alias_for,
    postgres_server_cursor,
    postgres_settings_for,
    tenant_db_path,
    tenant_pg_name,
    tenants_on_postgres,
)
from tenants.models import Membership, Tenant
from tenants.provisioning import (
    database_exists,
    drop_database,
    ensure_template,
    pg_database_exists,
    pg_drop_database,
    quote_pg_name,
    tenant_migration_targets,
)

logger = logging.getLogger(__name__)

DEFAULT_KEEP = 14
BACKUP_SUFFIX = ".sqlite3"
PG_BACKUP_SUFFIX = ".dump"  # pg_dump's custom format
_SQLITE_MAGIC = b"SQLite format 3\x00"
_PG_DUMP_MAGIC = b"PGDMP"
DELETED_NAME = "Deleted business"
_MIGRATIONS_QUERY = "SELECT app, name FROM django_migrations ORDER BY app, name"


class LifecycleError(RuntimeError):
    """A backup, restore, export or deletion could not be done; nothing half-done is left."""


# --- lookups -------------------------------------------------------------------------


def tenant_find(identifier: str) -> Tenant | None:
    """A tenant by slug or by id (a deleted tenant's slug is gone, its id is not)."""
    tenant = Tenant.objects.filter(slug=identifier.strip()).first()
    if tenant is not None:
        return tenant
    try:
        tenant_id = uuid.UUID(identifier.strip())
    except ValueError:
        return None
    return Tenant.objects.filter(pk=tenant_id).first()


def backups_root(dest: Path | str | None = None) -> Path:
    return Path(dest) if dest else Path(settings.VAR_DIR) / "backups"


def tenant_backups_dir(tenant_id: uuid.UUID, dest: Path | str | None = None) -> Path:
    return backups_root(dest) / str(tenant_id)


def tenant_backups(tenant_id: uuid.UUID, dest: Path | str | None = None) -> list[Path]:
    """The tenant's backups, oldest first (names are UTC timestamps, so they sort by time)."""
    folder = tenant_backups_dir(tenant_id, dest)
    if not folder.is_dir():
        return []
    suffix = backup_suffix()
    return sorted(p for p in folder.iterdir() if p.name.endswith(suffix) and p.is_file())


def backup_suffix() -> str:
    return PG_BACKUP_SUFFIX if tenants_on_postgres() else BACKUP_SUFFIX


# --- checks --------------------------------------------------------------------------


def _open_readonly(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def _integrity_problem(conn: sqlite3.Connection) -> str | None:
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:  # not a database at all, or unreadable
        return str(exc)
    if rows == [("ok",)]:
        return None
    return "; ".join(str(row[0]) for row in rows[:5])


def _migration_rows(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    try:
        return [(app, name) for app, name in conn.execute(_MIGRATIONS_QUERY).fetchall()]
    except sqlite3.DatabaseError as exc:
        raise LifecycleError(f"it has no readable migration history ({exc})") from exc


def database_verify(path: Path) -> None:
    """Refuse ``path`` unless it is a sound tenant database at the code's schema version."""
    if not path.is_file():
        raise LifecycleError(f"{path} does not exist")
    with closing(_open_readonly(path)) as conn:
        problem = _integrity_problem(conn)
        if problem is not None:
            raise LifecycleError(f"{path} failed its integrity check: {problem}")
        rows = _migration_rows(conn)
    with closing(_open_readonly(ensure_template())) as template:
        expected = _migration_rows(template)
    if rows != expected:
        missing = sorted(set(expected) - set(rows))
        unknown = sorted(set(rows) - set(expected))
        details = []
        if missing:
            details.append("missing " + ", ".join(f"{a}.{n}" for a, n in missing[:5]))
        if unknown:
            details.append("unknown " + ", ".join(f"{a}.{n}" for a, n in unknown[:5]))
        raise LifecycleError(
            f"{path} does not match the current tenant schema ({'; '.join(details)})"
        )


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- backup --------------------------------------------------------------------------


def _backup_name(folder: Path, now: datetime) -> Path:
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    suffix = backup_suffix()
    candidate = folder / f"{stamp}{suffix}"
    n = 1
    # Two backups within one microsecond (or under a frozen test clock) keep both.
    while candidate.exists():
        candidate = folder / f"{stamp}-{n:03d}{suffix}"
        n += 1
    return candidate


def tenant_backup(
    *, tenant: Tenant, dest: Path | str | None = None, keep: int = DEFAULT_KEEP
) -> Path:
    """Copy the tenant's live database into its backups folder; returns the new file.

    The newest ``keep`` backups of the tenant are kept, older ones removed.
    """
    if keep < 1:
        raise LifecycleError("keep must be at least 1")
    if tenants_on_postgres():
        final = _pg_backup(tenant, tenant_backups_dir(tenant.id, dest))
        backups_prune(tenant_id=tenant.id, dest=dest, keep=keep)
        logger.info("backed up tenant %s", tenant.id)
        return final
    source_path = tenant_db_path(tenant.id)
    if not source_path.is_file():
        raise LifecycleError(f"tenant {tenant.id} has no database file")
    folder = tenant_backups_dir(tenant.id, dest)
    folder.mkdir(parents=True, exist_ok=True)
    final = _backup_name(folder, timezone.now())
    partial = final.with_name(final.name + ".partial")
    try:
        with closing(_open_readonly(source_path)) as source, closing(
            sqlite3.connect(partial)
        ) as target:
            # One step (pages=-1): the whole copy is read under one snapshot.
            source.backup(target)
            # A backup is one self-contained file, never a file plus a WAL.
            target.execute("PRAGMA journal_mode=DELETE")
            problem = _integrity_problem(target)
        if problem is not None:
            raise LifecycleError(f"the copy failed its integrity check: {problem}")
        _fsync(partial)
        os.replace(partial, final)
    except sqlite3.Error as exc:
        raise LifecycleError(f"backup of tenant {tenant.id} failed: {exc}") from exc
    finally:
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(str(partial) + suffix).unlink(missing_ok=True)
    backups_prune(tenant_id=tenant.id, dest=dest, keep=keep)
    logger.info("backed up tenant %s", tenant.id)
    return final


def backups_prune(*, tenant_id: uuid.UUID, dest: Path | str | None = None, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` backups of the tenant; returns what was removed."""
    backups = tenant_backups(tenant_id, dest)
    removed = backups[:-keep] if keep > 0 else backups
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


@dataclass
class BackupRun:
    """What a backup of every business did: each one backed up, or why not."""

    done: list[tuple[Tenant, Path]] = field(default_factory=list)
    failed: list[tuple[Tenant, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def tenants_to_back_up() -> QuerySet[Tenant]:
    # Suspended businesses keep their data and usually come back; only
    # cancelled ones (whose data is being or has been erased) are left out.
    return Tenant.objects.filter(
        status__in=[Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED]
    ).order_by("slug")


def tenants_backup_all(
    *,
    dest: Path | str | None = None,
    keep: int = DEFAULT_KEEP,
    progress: Callable[[Tenant, Path | None, str | None], None] | None = None,
) -> BackupRun:
    """Back up every open business, each copy checked; one failure never stops the rest.

    ``progress`` hears about each business as it is done (its new file, or the
    reason it failed).
    """
    if keep < 1:
        raise LifecycleError("keep must be at least 1")
    run = BackupRun()
    for tenant in tenants_to_back_up():
        try:
            path = tenant_backup(tenant=tenant, dest=dest, keep=keep)
        except (LifecycleError, OSError, sqlite3.Error) as exc:
            reason = str(exc) or type(exc).__name__
            logger.error("backup of tenant %s failed: %s", tenant.id, reason)
            run.failed.append((tenant, reason))
            if progress is not None:
                progress(tenant, None, reason)
            continue
        run.done.append((tenant, path))
        if progress is not None:
            progress(tenant, path, None)
    return run


# --- restore -------------------------------------------------------------------------


def tenant_restore(*, tenant: Tenant, source: Path | str) -> None:
    """Replace the tenant's live database with ``source`` (a backup), all or nothing.

    The file is verified and copied next to the live database first; the swap
    itself is one rename, so a crash leaves either the old or the new database.
    """
    source = Path(source)
    if tenants_on_postgres():
        _pg_restore(tenant, source)
        logger.info("restored tenant %s from a backup", tenant.id)
        return
    database_verify(source)
    live = tenant_db_path(tenant.id)
    live.parent.mkdir(parents=True, exist_ok=True)
    # ".partial" is a suffix drop_database also cleans up after a crash.
    staged = live.with_name(live.name + ".partial")
    try:
        with closing(_open_readonly(source)) as src, closing(sqlite3.connect(staged)) as target:
            src.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")
            problem = _integrity_problem(target)
        if problem is not None:
            raise LifecycleError(f"the staged copy failed its integrity check: {problem}")
        _fsync(staged)
        alias = alias_for(tenant.id)
        connections.forget(alias)  # type: ignore[attr-defined]
        if live.exists():
            # Fold committed pages into the old file so the WAL about to be
            # removed holds nothing that could be replayed onto the new one.
            with closing(sqlite3.connect(live)) as old:
                old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        os.replace(staged, live)
        for suffix in ("-wal", "-shm", "-journal"):
            Path(str(live) + suffix).unlink(missing_ok=True)
        _fsync(live.parent)
    except sqlite3.Error as exc:
        raise LifecycleError(f"restore of tenant {tenant.id} failed: {exc}") from exc
    finally:
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(str(staged) + suffix).unlink(missing_ok=True)
    logger.info("restored tenant %s from a backup", tenant.id)


# --- PostgreSQL tenants ------------------------------------------------------------


def _pg_command(
    program: str, database: str, parameters: list[str]
) -> tuple[list[str], dict[str, str]]:
    """``program`` with the connection options Django's own ``dbshell`` would give psql.

    The password travels in the environment (PGPASSWORD), never on the command line.
    """
    executable = shutil.which(program)
    if executable is None:
        raise LifecycleError(
            f"{program} is not installed; backups of PostgreSQL tenant databases need the "
            "PostgreSQL client tools (the server's major version or newer)"
        )
    args, env = DatabaseClient.settings_to_cmd_args_env(postgres_settings_for(database), parameters)
    return [executable, *args[1:]], {**os.environ, **(env or {})}


def _pg_run(args: list[str], env: dict[str, str]) -> None:
    try:
        subprocess.run(args, env=env, check=True, capture_output=True, text=True)  # noqa: S603
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or "").strip().splitlines()
        reason = detail[0] if detail else f"exit status {exc.returncode}"
        raise LifecycleError(f"{Path(args[0]).name} failed: {reason}") from exc


def _pg_dump_check(path: Path) -> None:
    """Refuse ``path`` unless pg_restore can read it as a whole custom-format dump."""
    if not path.is_file():
        raise LifecycleError(f"{path} does not exist")
    with open(path, "rb") as handle:
        head = handle.read(len(_SQLITE_MAGIC))
    if head.startswith(_SQLITE_MAGIC):
        raise LifecycleError(
            f"{path} is a SQLite backup; this installation keeps businesses in PostgreSQL"
        )
    if not head.startswith(_PG_DUMP_MAGIC):
        raise LifecycleError(f"{path} is not a pg_dump backup (custom format)")
    executable = shutil.which("pg_restore")
    if executable is None:
        raise LifecycleError("pg_restore is not installed (PostgreSQL client tools)")
    _pg_run([executable, "--list", str(path)], dict(os.environ))


def _pg_backup(tenant: Tenant, folder: Path) -> Path:
    if not database_exists(tenant.id):
        raise LifecycleError(f"tenant {tenant.id} has no database")
    folder.mkdir(parents=True, exist_ok=True)
    final = _backup_name(folder, timezone.now())
    partial = final.with_name(final.name + ".partial")
    try:
        # pg_dump reads one snapshot while bookings go on being written.
        args, env = _pg_command(
            "pg_dump",
            tenant_pg_name(tenant.id),
            ["--format=custom", "--no-owner", "--no-privileges", f"--file={partial}"],
        )
        _pg_run(args, env)
        _pg_dump_check(partial)
        _fsync(partial)
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    return final


def _pg_schema_problem(database: str) -> str | None:
    """What keeps ``database`` from being a tenant database at the code's schema, if anything."""
    handler = cast(TenantConnectionHandler, connections)
    with handler.temporary("restore_check", postgres_settings_for(database)) as connection:
        executor = MigrationExecutor(connection)
        missing = [
            f"{m.app_label}.{m.name}"
            for m, _ in executor.migration_plan(tenant_migration_targets(executor))
        ]
        known = set(executor.loader.graph.nodes)
        for replaced in executor.loader.replacements.values():
            known.update(replaced.replaces)
        unknown = sorted(
            f"{app}.{name}"
            for app, name in executor.loader.applied_migrations
            if app in settings.TENANT_APPS and (app, name) not in known
        )
    details = []
    if missing:
        details.append("missing " + ", ".join(missing[:5]))
    if unknown:
        details.append("unknown " + ", ".join(unknown[:5]))
    return "; ".join(details) or None


def _pg_restore(tenant: Tenant, source: Path) -> None:
    """Restore into "<name>_new", check it, then swap it in for the live database by renaming.

    Until the swap nothing live is touched. The swap parks the live database as
    "<name>_old" and renames the new one in its place; should that fail, the
    old one goes back.
    """
    _pg_dump_check(source)
    live = tenant_pg_name(tenant.id)
    staged, parked = (live + suffix for suffix in PG_RESTORE_SUFFIXES)
    with postgres_server_cursor() as cursor:
        for leftover in (staged, parked):  # from an interrupted restore
            pg_drop_database(cursor, leftover)
        cursor.execute(
            f"CREATE DATABASE {quote_pg_name(cursor, staged)} TEMPLATE template0 ENCODING 'UTF8'"
        )
    try:
        args, env = _pg_command(
            "pg_restore",
            staged,
            # All or nothing: a damaged dump leaves an empty staged database, never half a one.
            ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
             "--dbname"],
        )
        _pg_run([*args, str(source)], env)
        problem = _pg_schema_problem(staged)
        if problem is not None:
            raise LifecycleError(f"{source} does not match the current tenant schema ({problem})")
    except BaseException:
        with postgres_server_cursor() as cursor:
            pg_drop_database(cursor, staged)
        raise
    connections.forget(alias_for(tenant.id))  # type: ignore[attr-defined]
    with postgres_server_cursor() as cursor:
        q_live, q_staged, q_parked = (quote_pg_name(cursor, n) for n in (live, staged, parked))
        had_live = pg_database_exists(cursor, live)
        try:
            if had_live:
                # No new sessions, then end the current ones: a database in use
                # cannot be renamed. The business is unreachable for this moment.
                cursor.execute(f"ALTER DATABASE {q_live} WITH ALLOW_CONNECTIONS false")
                cursor.execute(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    [live],
                )
                cursor.execute(f"ALTER DATABASE {q_live} RENAME TO {q_parked}")
            cursor.execute(f"ALTER DATABASE {q_staged} RENAME TO {q_live}")
        except Exception as exc:
            if had_live:  # put the old database back as it was
                if not pg_database_exists(cursor, live):
                    cursor.execute(f"ALTER DATABASE {q_parked} RENAME TO {q_live}")
                cursor.execute(f"ALTER DATABASE {q_live} WITH ALLOW_CONNECTIONS true")
            pg_drop_database(cursor, staged)
            raise LifecycleError(f"restore of tenant {tenant.id} failed: {exc}") from exc
        if had_live:
            pg_drop_database(cursor, parked)


# --- export --------------------------------------------------------------------------

APPOINTMENT_COLUMNS = (
    "reference", "service", "staff", "start", "end", "status", "channel",
    "customer_name", "customer_phone", "customer_email", "notes", "created_at", "cancelled_at",
)
CUSTOMER_COLUMNS = ("name", "phone", "email", "created_at")


@dataclass(frozen=True)
class ExportFiles:
    json: Path
    appointments_csv: Path
    customers_csv: Path


def _iso(value: datetime | None, tz: Any) -> str | None:
    return value.astimezone(tz).isoformat() if value is not None else None


def _tenant_data() -> dict[str, Any]:
    # Imported here: booking's modules import tenants at load time.
    from booking.config import config_export
    from booking.models import Customer
    from booking.selectors import appointments_all, business_zone, waitlist_entries

    tz = business_zone()
    appointments = [
        {
            "reference": a.reference,
            "service": a.service.name,
            "staff": a.staff.name,
            "start": _iso(a.start, tz),
            "end": _iso(a.end, tz),
            "status": a.status,
            "channel": a.channel,
            "customer_name": a.customer.name,
            "customer_phone": a.customer.phone,
            "customer_email": a.customer.email,
            "notes": a.notes,
            "created_at": _iso(a.created_at, tz),
            "cancelled_at": _iso(a.cancelled_at, tz),
        }
        for a in appointments_all()
    ]
    customers = [
        {"name": c.name, "phone": c.phone, "email": c.email, "created_at": _iso(c.created_at, tz)}
        for c in Customer.objects.order_by("created_at", "pk")
    ]
    waitlist = [
        {
            "customer_name": w.customer.name,
            "customer_phone": w.customer.phone,
            "service": w.service.name,
            "staff": w.staff.name if w.staff else None,
            "status": w.status,
            "windows": w.windows,
            "earliest": _iso(w.earliest, tz),
            "latest": _iso(w.latest, tz),
            "created_at": _iso(w.created_at, tz),
        }
        for w in waitlist_entries()
    ]
    return {
        "setup": config_export(),
        "appointments": appointments,
        "customers": customers,
        "waitlist": waitlist,
    }


def _cell(value: Any) -> str:
    """CSV text that a spreadsheet shows as text, never evaluates as a formula."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "@", "\t", "\r") or (
        text[:1] in ("+", "-") and not text[1:].replace(".", "", 1).isdigit()
    ):
        return "'" + text
    return text


def _write_csv(path: Path, columns: Iterable[str], rows: list[dict[str, Any]]) -> None:
    columns = list(columns)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row[column]) for column in columns])


def tenant_export(*, tenant: Tenant, dest: Path | str) -> ExportFiles:
    """Everything the business holds on its customers, as JSON plus two CSV files."""
    folder = Path(dest)
    folder.mkdir(parents=True, exist_ok=True)
    with tenant_context(tenant):
        data = _tenant_data()
    document = {
        "business": {"slug": tenant.slug, "name": tenant.name, "timezone": tenant.timezone},
        "exported_at": timezone.now().isoformat(),
        **data,
    }
    files = ExportFiles(
        json=folder / f"{tenant.slug}.json",
        appointments_csv=folder / f"{tenant.slug}-appointments.csv",
        customers_csv=folder / f"{tenant.slug}-customers.csv",
    )
    files.json.write_text(json.dumps(document, indent=2, ensure_ascii=False), encoding="utf-8")
    _write_csv(files.appointments_csv, APPOINTMENT_COLUMNS, data["appointments"])
    _write_csv(files.customers_csv, CUSTOMER_COLUMNS, data["customers"])
    logger.info("exported tenant %s", tenant.id)
    return files


# --- deletion ------------------------------------------------------------------------


def deleted_slug(tenant: Tenant) -> str:
    return f"deleted-{tenant.id.hex[:12]}"


def tenant_delete(*, tenant: Tenant) -> Tenant:
    """Erase a business for a privacy request; running it again changes nothing.

    The database and the default-location backups go; the control-plane rows
    stay (billing history refers to them) but no longer say whose they were.
    Members left with no other business lose their accounts' identity too;
    platform staff accounts are never touched.
    """
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
        tenant.status = Tenant.Status.CANCELLED
        tenant.name = DELETED_NAME
        tenant.slug = deleted_slug(tenant)
        tenant.phone_number = None
        tenant.save(update_fields=["status", "name", "slug", "phone_number"])
        member_ids = list(
            Membership.objects.filter(tenant=tenant).values_list("user_id", flat=True)
        )
        Membership.objects.filter(tenant=tenant).delete()
        orphans = User.objects.filter(
            pk__in=member_ids, is_staff=False, is_superuser=False
        ).exclude(memberships__isnull=False)
        for user in orphans:
            user.username = f"deleted-user-{user.pk}"
            user.email = ""
            user.first_name = ""
            user.last_name = ""
            user.is_active = False
            user.set_unusable_password()
            user.save()
    # Files go after the rows commit: the business stops being served first,
    # and a failure here is fixed by running the deletion again.
    drop_database(tenant.id)
    shutil.rmtree(tenant_backups_dir(tenant.id), ignore_errors=True)
    logger.info("deleted tenant %s", tenant.id)
    return tenant
