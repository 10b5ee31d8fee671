"""Put a checked backup back as a business's live database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.lifecycle import LifecycleError, tenant_find, tenant_restore


class Command(BaseCommand):
    help = (
        "Replaces a business's database with a backup, after checking the backup's "
        "integrity and schema. Everything written since the backup is lost."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="The business's slug (or id)")
        parser.add_argument("--from", dest="source", required=True, metavar="FILE",
                            help="The backup file (.sqlite3, or .dump on PostgreSQL)")
        parser.add_argument("--yes", action="store_true",
                            help="Confirm replacing the live database")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_find(options["slug"])
        if tenant is None:
            raise CommandError(f"No business with slug or id {options['slug']!r}.")
        if not options["yes"]:
            raise CommandError(
                f"This replaces {tenant.slug}'s live database with {options['source']}; "
                "everything written since that backup is lost. Add --yes to go ahead."
            )
        try:
            tenant_restore(tenant=tenant, source=Path(options["source"]))
        except LifecycleError as exc:
            raise CommandError(f"Restore refused, nothing was changed: {exc}") from exc
        self.stdout.write(self.style.SUCCESS(f"Restored {tenant.slug} from {options['source']}"))
