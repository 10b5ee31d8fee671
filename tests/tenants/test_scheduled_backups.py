"""The backup of every business: the command, retention, and the daily task."""

from __future__ import annotations

import io
import signal
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tasks_db.models import DBTaskResult

from tenants.lifecycle import tenant_backups
from tenants.provisioning import drop_database
from tenants.services import tenant_set_status
from tenants.tasks import BackupsFailed, backup_schedule_ensure, daily_backup, next_backup_time
from tests.conftest import MakeTenant

pytestmark = pytest.mark.django_db

# A Tuesday, just after the daily backup time (03:00 UTC).
RUN_TIME = datetime(2026, 3, 3, 3, 0, 5, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    # The schedule's claim keys live in the cache, which outlives a test.
    cache.clear()
    yield
    cache.clear()


def run(*args: str) -> str:
    out = io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=io.StringIO())
    except CommandError as exc:
        raise CommandError(f"{exc}\n{out.getvalue()}") from exc
    return out.getvalue()


def integrity(path: Path) -> str:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def queued_backups() -> list[datetime]:
    return list(
        DBTaskResult.objects.filter(task_path=daily_backup.module_path, status="READY")
        .order_by("run_after").values_list("run_after", flat=True)
    )


# --- the command ----------------------------------------------------------------------------


def test_every_open_business_is_backed_up_and_checked(
    make_tenant: MakeTenant, tmp_path: Path
) -> None:
    active = make_tenant("open-shop")
    suspended = tenant_set_status(tenant=make_tenant("paused-shop"), status="suspended")
    cancelled = tenant_set_status(tenant=make_tenant("closed-shop"), status="cancelled")

    out = run("backup_all_tenants", "--dest", str(tmp_path))

    for tenant in (active, suspended):
        [backup] = tenant_backups(tenant.id, tmp_path)
        assert integrity(backup) == "ok"
        assert f"{tenant.slug} ... ok {backup}" in out
    assert tenant_backups(cancelled.id, tmp_path) == []
    assert "closed-shop" not in out
    assert "2 backed up, 0 failed." in out


def test_a_failing_business_does_not_stop_the_others_and_the_command_fails(
    make_tenant: MakeTenant, tmp_path: Path
) -> None:
    first, broken, last = (make_tenant(slug) for slug in ("a-first", "b-broken", "c-last"))
    drop_database(broken.id)

    with pytest.raises(CommandError, match="1 backup\\(s\\) failed") as failure:
        run("backup_all_tenants", "--dest", str(tmp_path))

    report = str(failure.value)
    assert "b-broken ... FAILED" in report
    assert "2 backed up, 1 failed." in report
    assert len(tenant_backups(first.id, tmp_path)) == 1
    assert len(tenant_backups(last.id, tmp_path)) == 1
    assert tenant_backups(broken.id, tmp_path) == []


def test_retention_keeps_only_the_newest_backups_of_each_business(
    make_tenant: MakeTenant, tmp_path: Path
) -> None:
    tenant = make_tenant()
    days = [RUN_TIME + timedelta(days=n) for n in range(4)]
    for day in days:
        with time_machine.travel(day, tick=False):
            run("backup_all_tenants", "--dest", str(tmp_path), "--keep", "2")

    kept = tenant_backups(tenant.id, tmp_path)
    assert [p.name[:8] for p in kept] == ["20260305", "20260306"]


def test_keep_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="--keep"):
        run("backup_all_tenants", "--dest", str(tmp_path), "--keep", "0")


# --- the daily schedule ---------------------------------------------------------------------


def test_the_next_backup_time_is_the_coming_three_oclock_utc() -> None:
    assert next_backup_time(datetime(2026, 3, 3, 2, 59, tzinfo=UTC)) == datetime(
        2026, 3, 3, 3, 0, tzinfo=UTC)
    assert next_backup_time(datetime(2026, 3, 3, 3, 0, tzinfo=UTC)) == datetime(
        2026, 3, 4, 3, 0, tzinfo=UTC)


def test_the_daily_run_backs_up_and_queues_the_next_run_a_day_later(
    make_tenant: MakeTenant
) -> None:
    tenants = [make_tenant(), make_tenant()]
    with time_machine.travel(RUN_TIME, tick=False):
        result = daily_backup.call()

    assert result == {"backed_up": 2}
    assert queued_backups() == [datetime(2026, 3, 4, 3, 0, tzinfo=UTC)]
    for tenant in tenants:
        [backup] = tenant_backups(tenant.id)
        assert backup.name.startswith("20260303T030005")


def test_a_failed_backup_fails_the_run_but_keeps_the_schedule(make_tenant: MakeTenant) -> None:
    healthy, broken = make_tenant(), make_tenant()
    drop_database(broken.id)
    with time_machine.travel(RUN_TIME, tick=False), pytest.raises(BackupsFailed, match="1 backup"):
        daily_backup.call()

    assert len(tenant_backups(healthy.id)) == 1
    assert queued_backups() == [datetime(2026, 3, 4, 3, 0, tzinfo=UTC)]


def test_queuing_the_schedule_again_adds_no_second_run() -> None:
    with time_machine.travel(datetime(2026, 3, 3, 12, 0, tzinfo=UTC), tick=False):
        first = backup_schedule_ensure()
        again = backup_schedule_ensure()
        out = run("backup_all_tenants", "--schedule")
        cache.clear()  # another server, with its own cache, starting up
        from_elsewhere = backup_schedule_ensure()

    tomorrow = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)
    assert first == again == from_elsewhere == tomorrow
    assert "daily backup queued for 2026-03-04T03:00:00+00:00" in out
    assert queued_backups() == [tomorrow]


@pytest.fixture
def _signals_restored() -> Iterator[None]:
    # The worker installs its own shutdown handlers; pytest's must come back.
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.usefixtures("_signals_restored")
def test_the_task_worker_runs_the_queued_backup_when_it_is_due(
    make_tenant: MakeTenant
) -> None:
    tenant = make_tenant()
    with time_machine.travel(datetime(2026, 3, 3, 12, 0, tzinfo=UTC), tick=False):
        backup_schedule_ensure()
        run("db_worker", "--batch", "--no-startup-delay", "--no-reload")
        assert tenant_backups(tenant.id) == []  # not due yet
    with time_machine.travel(datetime(2026, 3, 4, 3, 0, 1, tzinfo=UTC), tick=False):
        run("db_worker", "--batch", "--no-startup-delay", "--no-reload")

    assert len(tenant_backups(tenant.id)) == 1
    done = DBTaskResult.objects.get(task_path=daily_backup.module_path, status="SUCCESSFUL")
    assert done.return_value == {"backed_up": 1}
    assert queued_backups() == [datetime(2026, 3, 5, 3, 0, tzinfo=UTC)]
