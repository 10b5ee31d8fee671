"""A tenant's data over its life: backups, restores, exports and deletion.

Backups use SQLite's online backup API on a read-only connection: in WAL mode
a reader sees one committed snapshot while bookings keep being written, so the
copy is consistent without stopping the business. Every copy is
integrity-checked before it counts as a backup, and every file a restore would
install is checked the same way before the live database is touched.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connections, transaction
from django.utils import timezone

from tenants.context import tenant_context
from tenants.db import alias_for, tenant_db_path
from tenants.models import Membership, Tenant
from tenants.provisioning import drop_database, ensure_template

logger = logging.getLogger(__name__)

DEFAULT_KEEP = 14
BACKUP_SUFFIX = ".sqlite3"
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
    return sorted(p for p in folder.iterdir() if p.name.endswith(BACKUP_SUFFIX) and p.is_file())


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
    candidate = folder / f"{stamp}{BACKUP_SUFFIX}"
    n = 1
    # Two backups within one microsecond (or under a frozen test clock) keep both.
    while candidate.exists():
        candidate = folder / f"{stamp}-{n:03d}{BACKUP_SUFFIX}"
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


# --- restore -------------------------------------------------------------------------


def tenant_restore(*, tenant: Tenant, source: Path | str) -> None:
    """Replace the tenant's live database with ``source`` (a backup), all or nothing.

    The file is verified and copied next to the live database first; the swap
    itself is one rename, so a crash leaves either the old or the new database.
    """
    source = Path(source)
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
