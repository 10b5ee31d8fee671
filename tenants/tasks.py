"""The daily backup of every business, as a self-rescheduling background task.

django-tasks has no cron: each run queues the next one (``run_after``) before
it starts backing up, so neither a failed backup nor a crash breaks the chain,
and ``backup_all_tenants --schedule`` (run when the server starts) queues the
first one. Queuing is idempotent, so restarts and several servers starting at
once still leave one run a day.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django_tasks import task

from tenants.lifecycle import DEFAULT_KEEP, tenants_backup_all

logger = logging.getLogger(__name__)

# The quiet hours of most businesses we serve (the Americas and Europe).
BACKUP_TIME_UTC = time(3, 0)


class BackupsFailed(RuntimeError):
    """Some businesses could not be backed up (the others were)."""


def next_backup_time(now: datetime | None = None) -> datetime:
    """The first daily backup time strictly after ``now``."""
    now = (now or timezone.now()).astimezone(UTC)
    candidate = datetime.combine(now.date(), BACKUP_TIME_UTC, tzinfo=UTC)
    return candidate if candidate > now else candidate + timedelta(days=1)


def _queued_in_database() -> datetime | None:
    """When the daily backup is already waiting in the database queue, if it is."""
    from django_tasks_db.backend import DatabaseBackend
    from django_tasks_db.models import DBTaskResult

    if not isinstance(daily_backup.get_backend(), DatabaseBackend):
        return None
    waiting = (
        DBTaskResult.objects.filter(task_path=daily_backup.module_path, status="READY")
        .order_by("run_after")
        .values_list("run_after", flat=True)
        .first()
    )
    return waiting


def backup_schedule_ensure(now: datetime | None = None) -> datetime | None:
    """Queue the next daily backup unless one is already queued; returns when it runs.

    None when the task backend cannot run a task later (no schedule possible:
    use an external scheduler, see docs/deploy-aws.md).
    """
    if not daily_backup.get_backend().supports_defer:
        return None
    now = now or timezone.now()
    run_at = next_backup_time(now)
    # On the database queue the check and the insert share one transaction
    # (SQLite takes the write lock at BEGIN); the cache key covers the other
    # backends and servers starting together on PostgreSQL (atomic add on Redis).
    with transaction.atomic():
        already = _queued_in_database()
        if already is not None:
            return already
        claim = f"tenants:daily-backup:{run_at:%Y%m%dT%H%MZ}"
        ttl = int((run_at - now).total_seconds()) + 3600
        if not cache.add(claim, "queued", timeout=ttl):
            return run_at
        try:
            daily_backup.using(run_after=run_at).enqueue()
        except BaseException:
            cache.delete(claim)  # let the next attempt queue it
            raise
    logger.info("daily backup queued for %s", run_at.isoformat())
    return run_at


@task()
def daily_backup() -> dict[str, Any]:
    """Back up every open business, then fail loudly if any backup failed."""
    backup_schedule_ensure()
    run = tenants_backup_all(keep=DEFAULT_KEEP)
    if run.failed:
        names = ", ".join(tenant.slug for tenant, _reason in run.failed)
        raise BackupsFailed(
            f"{len(run.failed)} backup(s) failed ({names}); {len(run.done)} succeeded."
        )
    return {"backed_up": len(run.done)}
