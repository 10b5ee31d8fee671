"""Back up one business's database, or every business's, as checked copies."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.lifecycle import DEFAULT_KEEP, LifecycleError, tenant_backup, tenant_find
from tenants.models import Tenant
from tenants.provisioning import database_exists


class Command(BaseCommand):
    help = (
        "Copies a business's database (online, while it keeps taking bookings) into "
        "<dest>/<tenant id>/<UTC timestamp>.sqlite3 (.dump, from pg_dump, for businesses "
        "on PostgreSQL) and checks the copy."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", nargs="?", help="The business's slug (or id)")
        parser.add_argument("--all", action="store_true", help="Back up every business")
        parser.add_argument(
            "--dest", default=None, metavar="DIR", help="Backups folder (default: VAR_DIR/backups)"
        )
        parser.add_argument(
            "--keep", type=int, default=DEFAULT_KEEP, metavar="N",
            help=f"Backups to keep per business, newest first (default {DEFAULT_KEEP})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["keep"] < 1:
            raise CommandError("--keep must be at least 1.")
        if bool(options["slug"]) == bool(options["all"]):
            raise CommandError("Give either a business's slug or --all.")
        if options["all"]:
            self._backup_all(dest=options["dest"], keep=options["keep"])
            return
        tenant = tenant_find(options["slug"])
        if tenant is None:
            raise CommandError(f"No business with slug or id {options['slug']!r}.")
        try:
            path = tenant_backup(tenant=tenant, dest=options["dest"], keep=options["keep"])
        except LifecycleError as exc:
            raise CommandError(f"{tenant.slug}: backup FAILED: {exc}") from exc
        self.stdout.write(f"{tenant.slug} ... ok {path}")

    def _backup_all(self, *, dest: str | None, keep: int) -> None:
        failed = 0
        for tenant in Tenant.objects.order_by("slug"):
            if tenant.status == Tenant.Status.CANCELLED and not database_exists(tenant.id):
                # A deleted business: nothing left to back up.
                self.stdout.write(f"{tenant.slug} ... skipped (no database)")
                continue
            try:
                path = tenant_backup(tenant=tenant, dest=dest, keep=keep)
            except LifecycleError as exc:
                failed += 1
                self.stdout.write(f"{tenant.slug} ... FAILED: {exc}")
                continue
            self.stdout.write(f"{tenant.slug} ... ok {path}")
        if failed:
            raise CommandError(f"{failed} backup(s) failed.")
