from __future__ import annotations

import uuid
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

# Slugs that would collide with our own URLs or read as official.
RESERVED_SLUGS = frozenset(
    {
        "admin", "api", "app", "b", "billing", "dashboard", "demo", "help", "login",
        "logout", "media", "signup", "static", "stripe", "support", "voice", "widget",
        "ws", "www", "healthz", "readyz", "about", "account", "accounts", "smartscheduler",
        # /voice/<name> webhooks that find the business by the called number.
        "incoming", "status", "sms", "turn",
    }
)

slug_format = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{1,48}[a-z0-9])$",
    "Use 3 to 50 lowercase letters, digits and hyphens, starting and ending with a "
    "letter or digit.",
)


def validate_slug_not_reserved(value: str) -> None:
    if value in RESERVED_SLUGS:
        raise ValidationError(
            "%(slug)s is reserved; please choose another.", params={"slug": value}
        )


phone_e164 = RegexValidator(
    r"^\+[1-9][0-9]{6,14}$", "Use the international format, e.g. +12125550100."
)


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            "%(tz)s is not a known IANA time zone (e.g. America/New_York).", params={"tz": value}
        )


class Plan(models.TextChoices):
    STARTER = "starter", "Starter"
    STANDARD = "standard", "Standard"
    PREMIUM = "premium", "Premium"


class Tenant(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        CANCELLED = "cancelled", "Cancelled"

    # The id names the tenant's database, so it never changes; the slug may.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(
        max_length=50, unique=True, validators=[slug_format, validate_slug_not_reserved]
    )
    name = models.CharField(max_length=120)
    timezone = models.CharField(max_length=64, validators=[validate_timezone])
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    plan = models.CharField(max_length=16, choices=Plan.choices, default=Plan.STARTER)
    # The business's Twilio number: calls and texts to it reach this business
    # (``/voice/incoming`` finds the business by the called number).
    phone_number = models.CharField(
        max_length=16, unique=True, null=True, blank=True, validators=[phone_e164],
        help_text="E.164 Twilio number, e.g. +12125550100",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        STAFF = "staff", "Staff"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.OWNER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="one_membership_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant.slug} ({self.role})"
