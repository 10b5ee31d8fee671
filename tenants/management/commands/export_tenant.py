"""A business's data for a privacy or portability request: JSON plus CSV files."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.lifecycle import tenant_export, tenant_find


class Command(BaseCommand):
    help = (
        "Writes <slug>.json (setup, appointments, customers, waitlist), "
        "<slug>-appointments.csv and <slug>-customers.csv into DIR."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="The business's slug (or id)")
        parser.add_argument("--dest", required=True, metavar="DIR", help="Folder to write into")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_find(options["slug"])
        if tenant is None:
            raise CommandError(f"No business with slug or id {options['slug']!r}.")
        try:
            files = tenant_export(tenant=tenant, dest=options["dest"])
        except OSError as exc:
            raise CommandError(f"Cannot write the export: {exc}") from exc
        for path in (files.json, files.appointments_csv, files.customers_csv):
            self.stdout.write(str(path))
