"""Provision a business from the command line: its rows, its owner, its database."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError

from tenants.models import Plan
from tenants.provisioning import ProvisioningError
from tenants.services import normalize_email, tenant_create

# The owner's account fields, as the command's options name them.
_FIELD_LABELS = {"username": "owner email", "email": "owner email"}


def _describe(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "\n".join(
            f"  {_FIELD_LABELS.get(field, field)}: {message}"
            for field, messages in error.message_dict.items()
            for message in messages
        )
    return "\n".join(f"  {message}" for message in error.messages)


class Command(BaseCommand):
    help = "Creates a business: its tenant record, its owner's account and its own database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--slug", required=True, help="Address of its pages: /b/<slug>/")
        parser.add_argument("--name", required=True, help="The business's name")
        parser.add_argument("--timezone", required=True, help="IANA zone, e.g. America/New_York")
        parser.add_argument("--owner-email", required=True, help="The owner's login")
        parser.add_argument(
            "--owner-password",
            default=None,
            help="Password for a new owner account (omit to leave the account without one)",
        )
        parser.add_argument("--plan", choices=Plan.values, default=Plan.STARTER)

    def handle(self, *args: Any, **options: Any) -> None:
        email = normalize_email(options["owner_email"])
        password = options["owner_password"]
        existing_owner = User.objects.filter(username=email).exists()
        if password and not existing_owner:
            try:
                validate_password(password, User(username=email, email=email))
            except ValidationError as exc:
                raise CommandError("The owner password is too weak:\n" + _describe(exc)) from exc

        try:
            tenant = tenant_create(
                slug=options["slug"].strip(),
                name=options["name"],
                timezone=options["timezone"].strip(),
                owner_email=email,
                owner_password=password,
                plan=options["plan"],
            )
        except ValidationError as exc:
            raise CommandError("Cannot create the business:\n" + _describe(exc)) from exc
        except IntegrityError as exc:
            # Another process wrote the same slug or owner between validation and insert.
            raise CommandError(
                f"Cannot create the business: a conflicting write happened at the same time "
                f"({exc}); nothing was created, try again."
            ) from exc
        except ProvisioningError as exc:
            raise CommandError(f"Cannot create the business's database: {exc}") from exc

        self.stdout.write(self.style.SUCCESS(f"Created business {tenant.slug} ({tenant.name})"))
        self.stdout.write(f"id: {tenant.id}")
        self.stdout.write(f"slug: {tenant.slug}")
        if existing_owner:
            note = f"owner: existing account {email}"
            if password:
                note += " (its password was left unchanged)"
            self.stdout.write(note)
        elif password:
            self.stdout.write(f"owner: {email}")
        else:
            self.stdout.write(
                f"owner: {email} (no password yet: set one with "
                f"`manage.py changepassword {email}`)"
            )
