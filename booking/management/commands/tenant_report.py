from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from booking.reports import tenant_report
from tenants.context import tenant_context
from tenants.selectors import tenant_by_slug


class Command(BaseCommand):
    help = "A business's plan, usage, appointments and waitlist."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--json", action="store_true", help="one JSON object (for scripts)")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_slug(options["slug"])
        if tenant is None:
            raise CommandError(f"No business with the slug {options['slug']!r}.")
        with tenant_context(tenant):
            report = tenant_report()
        if options["json"]:
            self.stdout.write(json.dumps(report, ensure_ascii=False))
            return
        limit = report["appointment_limit"]
        self.stdout.write(
            f"{report['slug']}: plan {report['plan']} ({report['subscription_status']}), "
            f"features {', '.join(report['features']) or 'none'}\n"
            f"appointments this month: {report['appointments_this_month']}"
            f" of {'unlimited' if limit is None else limit}"
        )
        for a in report["appointments"]:
            self.stdout.write(
                f"  {a['reference']}  {a['start']}  {a['service']} with {a['staff']}"
                f"  [{a['status']}, {a['channel']}]"
            )
        for w in report["waitlist"]:
            self.stdout.write(f"  waitlist: {w['service']} [{w['status']}]")
