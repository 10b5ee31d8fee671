"""Show or change a business's chat widget settings."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agent.engine import chat_settings_get
from agent.widget import frame_sources_clean
from tenants.context import tenant_context
from tenants.selectors import tenant_by_slug


class Command(BaseCommand):
    help = "Show or change the websites allowed to show a business's chat, and its greeting."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument(
            "--allow-domain", action="append", default=[], metavar="SITE",
            help="a website that may show the chat widget (repeatable), e.g. "
                 "https://www.example.com",
        )
        parser.add_argument("--disallow-domain", action="append", default=[], metavar="SITE")
        parser.add_argument("--greeting", help="the first message customers see")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_slug(options["slug"])
        if tenant is None:
            raise CommandError(f"No business with the slug {options['slug']!r}.")
        with tenant_context(tenant):
            row = chat_settings_get()
            try:
                added = frame_sources_clean(options["allow_domain"])
                removed = frame_sources_clean(options["disallow_domain"])
                domains = frame_sources_clean(
                    [d for d in [*row.allowed_frame_domains, *added] if d not in removed]
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            changed = domains != row.allowed_frame_domains
            row.allowed_frame_domains = domains
            if options["greeting"] is not None:
                row.greeting = options["greeting"].strip()[:500]
                changed = True
            if changed:
                row.save()
            self.stdout.write(json.dumps(
                {"allowed_frame_domains": row.allowed_frame_domains, "greeting": row.greeting},
                ensure_ascii=False,
            ))
