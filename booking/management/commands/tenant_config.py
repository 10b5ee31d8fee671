from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from booking.config import ConfigError, config_export, config_import
from tenants.context import tenant_context
from tenants.selectors import tenant_by_slug


class Command(BaseCommand):
    help = (
        "Import or export a business's setup (services, staff, hours, closures, policy) as JSON. "
        "Import replaces the setup only if the whole file is valid."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--import", dest="import_file", metavar="FILE",
                            help="the setup file to import ('-' reads standard input)")
        action.add_argument("--export", action="store_true", help="print the current setup")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_slug(options["slug"])
        if tenant is None:
            raise CommandError(f"No business with the slug {options['slug']!r}.")
        with tenant_context(tenant):
            if options["export"]:
                self.stdout.write(json.dumps(config_export(), indent=2, ensure_ascii=False))
                return
            data = self._read(options["import_file"])
            try:
                summary = config_import(data)
            except ConfigError as exc:
                problems = "\n".join(f"  {error}" for error in exc.errors)
                raise CommandError(
                    f"The setup was not imported; nothing changed. Problems:\n{problems}"
                ) from None
        retired = summary.retired_services + summary.retired_staff
        note = f" Retired (still referenced): {', '.join(retired)}." if retired else ""
        self.stdout.write(self.style.SUCCESS(
            f"Imported the setup of {tenant.slug}: {summary.services} services, "
            f"{summary.staff} staff, {summary.closures} closures.{note}"
        ))

    def _read(self, path: str) -> Any:
        try:
            if path == "-":
                text = sys.stdin.read()
            else:
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise CommandError(f"{path} is not valid JSON: {exc}") from None
