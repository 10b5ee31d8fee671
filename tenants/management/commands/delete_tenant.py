"""Erase a business for a privacy request (its data, its backups, its members' identities)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.lifecycle import tenant_delete, tenant_find


class Command(BaseCommand):
    help = (
        "Deletes a business's database and its backups in VAR_DIR/backups, and anonymises "
        "its control-plane records. Cannot be undone; running it again is harmless."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="The business's slug (or id; after deletion only the id)")
        parser.add_argument("--yes", action="store_true", help="Confirm the deletion")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_find(options["slug"])
        if tenant is None:
            raise CommandError(f"No business with slug or id {options['slug']!r}.")
        if not options["yes"]:
            raise CommandError(
                f"This permanently erases {tenant.slug}'s data and backups. "
                "Add --yes to go ahead."
            )
        tenant = tenant_delete(tenant=tenant)
        self.stdout.write(self.style.SUCCESS(f"Deleted business {tenant.id} (now {tenant.slug})"))
