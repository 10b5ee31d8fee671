from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from booking.config import config_import
from tenants.context import tenant_context
from tenants.models import Membership, Plan, Tenant
from tenants.selectors import tenant_by_slug
from tenants.services import tenant_create

DEMO_SLUG = "demo-dental"
DEMO_NAME = "Bright Smile Dental"
DEMO_TIMEZONE = "America/New_York"
DEMO_OWNER_EMAIL = "demo@smartscheduler.local"
# A demo account on a local machine: the password is meant to be known.
DEMO_OWNER_PASSWORD = "bright-smile-demo"  # noqa: S105
DEMO_SETUP = Path(__file__).resolve().parents[2] / "demo.json"


class Command(BaseCommand):
    help = "Create or refresh the demo business (slug demo-dental); safe to run again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--print-login", action="store_true",
                            help="only print the demo owner's login")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["print_login"]:
            self.stdout.write(
                f"  Demo owner login: {DEMO_OWNER_EMAIL} / password: {DEMO_OWNER_PASSWORD}"
            )
            return
        tenant = tenant_by_slug(DEMO_SLUG)
        if tenant is None:
            tenant = tenant_create(
                slug=DEMO_SLUG,
                name=DEMO_NAME,
                timezone=DEMO_TIMEZONE,
                owner_email=DEMO_OWNER_EMAIL,
                owner_password=DEMO_OWNER_PASSWORD,
                plan=Plan.PREMIUM,
            )
            created = True
        else:
            self._refresh(tenant)
            created = False
        setup = json.loads(DEMO_SETUP.read_text(encoding="utf-8"))
        with tenant_context(tenant):
            config_import(setup)
        self.stdout.write(self.style.SUCCESS(
            f"{'Created' if created else 'Refreshed'} the demo business {DEMO_NAME} "
            f"at /b/{DEMO_SLUG}/"
        ))

    def _refresh(self, tenant: Tenant) -> None:
        """Put back what a demo needs: premium, active, the owner and the known password."""
        with transaction.atomic():
            if tenant.plan != Plan.PREMIUM or tenant.status != Tenant.Status.ACTIVE:
                tenant.plan, tenant.status = Plan.PREMIUM, Tenant.Status.ACTIVE
                tenant.save(update_fields=["plan", "status"])
            owner = User.objects.filter(username=DEMO_OWNER_EMAIL).first()
            if owner is None:
                owner = User(username=DEMO_OWNER_EMAIL, email=DEMO_OWNER_EMAIL)
                owner.set_password(DEMO_OWNER_PASSWORD)
                owner.save()
            elif not owner.check_password(DEMO_OWNER_PASSWORD):
                owner.set_password(DEMO_OWNER_PASSWORD)
                owner.save(update_fields=["password"])
            Membership.objects.get_or_create(
                user=owner, tenant=tenant, defaults={"role": Membership.Role.OWNER}
            )
