"""Back up every open business, each copy checked, keeping the newest N per business."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.lifecycle import DEFAULT_KEEP, tenants_backup_all
from tenants.models import Tenant
from tenants.tasks import backup_schedule_ensure


class Command(BaseCommand):
    help = (
        "Backs up every active or suspended business into <dest>/<tenant id>/, checks "
        "each copy, keeps the newest --keep per business, carries on past failures "
        "and exits non-zero if any failed. --schedule instead queues the daily run "
        "for the task worker (idempotent)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dest", default=None, metavar="DIR", help="Backups folder (default: VAR_DIR/backups)"
        )
        parser.add_argument(
            "--keep", type=int, default=DEFAULT_KEEP, metavar="N",
            help=f"Backups to keep per business, newest first (default {DEFAULT_KEEP})",
        )
        parser.add_argument(
            "--schedule", action="store_true",
            help="Queue the daily backup task unless it is queued already; back up nothing now",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["schedule"]:
            run_at = backup_schedule_ensure()
            if run_at is None:
                raise CommandError(
                    "The task backend cannot run tasks later; schedule "
                    "`manage.py backup_all_tenants` with an external scheduler instead."
                )
            self.stdout.write(f"daily backup queued for {run_at.isoformat()}")
            return
        if options["keep"] < 1:
            raise CommandError("--keep must be at least 1.")

        def progress(tenant: Tenant, path: Path | None, problem: str | None) -> None:
            if problem is None:
                self.stdout.write(f"{tenant.slug} ... ok {path}")
            else:
                self.stdout.write(f"{tenant.slug} ... FAILED: {problem}")

        run = tenants_backup_all(dest=options["dest"], keep=options["keep"], progress=progress)
        self.stdout.write(f"{len(run.done)} backed up, {len(run.failed)} failed.")
        if run.failed:
            raise CommandError(f"{len(run.failed)} backup(s) failed.")
