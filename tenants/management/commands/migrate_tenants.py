"""Bring the template and every tenant database up to date.

The template goes first: if it cannot be migrated, neither can the tenants,
and no tenant is touched. Then every tenant database is migrated, several at a
time; a failing tenant is reported and the rest carry on.
"""

from __future__ import annotations

import os
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.migrations_runner import migrate_template, migrate_tenants, short_reason
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Migrates the template database, then every tenant database (in parallel)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--parallel",
            type=int,
            default=None,
            metavar="N",
            help="How many tenant databases to migrate at once (default: number of CPUs).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        parallel = options["parallel"]
        if parallel is None:
            parallel = os.cpu_count() or 1
        if parallel < 1:
            raise CommandError("--parallel must be at least 1.")
        verbosity = options["verbosity"]
        started = time.monotonic()

        try:
            template_applied = migrate_template()
        except Exception as exc:
            raise CommandError(
                f"The template database failed to migrate ({short_reason(exc)}); "
                "no tenant database was touched."
            ) from exc
        if verbosity >= 1:
            self.stdout.write(f"template ... ok ({template_applied} applied)")

        # Read here, in the parent: workers only ever see tenant databases.
        tenants = list(Tenant.objects.order_by("slug").values_list("id", "slug"))
        total = len(tenants)
        failed: list[str] = []
        applied = 0
        for done, outcome in enumerate(migrate_tenants(tenants, parallel=parallel), start=1):
            if outcome.ok:
                applied += outcome.applied
                if verbosity >= 1:
                    self.stdout.write(f"[{done}/{total}] {outcome.slug} ... ok")
            else:
                failed.append(outcome.slug)
                self.stdout.write(f"[{done}/{total}] {outcome.slug} ... FAILED: {outcome.error}")
            self.stdout.flush()

        elapsed = time.monotonic() - started
        summary = (
            f"{total - len(failed)} of {total} tenant databases up to date, "
            f"{applied} migrations applied, {len(failed)} failed ({elapsed:.1f} s)."
        )
        if failed:
            self.stdout.write(self.style.ERROR(summary))
            shown = ", ".join(sorted(failed)[:20]) + (", ..." if len(failed) > 20 else "")
            raise CommandError(f"{len(failed)} tenant database(s) failed to migrate: {shown}")
        if verbosity >= 1:
            self.stdout.write(self.style.SUCCESS(summary))
