"""Tenant data: everything here lives in the business's own database."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


def default_reminder_offsets() -> list[int]:
    return [1440, 120]


class BusinessProfile(models.Model):
    """The business as its customers see it, and its booking policy.

    One row per tenant database (the database itself is the tenant, so there is
    no tenant column); ``profile_get`` creates it on first use.
    """

    display_name = models.CharField(max_length=120)
    address = models.CharField(max_length=255, blank=True)
    phone = models.CharField(max_length=32, blank=True, help_text="E.164, e.g. +12125550100")
    email = models.EmailField(blank=True)
    # Mirrors the control-plane tenant's zone so tenant code needs no cross-database read.
    timezone = models.CharField(max_length=64, default="UTC")
    slot_step_minutes = models.PositiveSmallIntegerField(
        default=15, validators=[MinValueValidator(5), MaxValueValidator(240)]
    )
    min_notice_minutes = models.PositiveIntegerField(
        default=60, validators=[MaxValueValidator(60 * 24 * 30)]
    )
    max_days_ahead = models.PositiveSmallIntegerField(
        default=60, validators=[MinValueValidator(1), MaxValueValidator(730)]
    )
    cancellation_notice_minutes = models.PositiveIntegerField(
        default=120, validators=[MaxValueValidator(60 * 24 * 30)]
    )
    reminder_offsets_minutes = models.JSONField(default=default_reminder_offsets)
    waitlist_hold_minutes = models.PositiveSmallIntegerField(
        default=15, validators=[MinValueValidator(1), MaxValueValidator(24 * 60)]
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "business profile"

    def __str__(self) -> str:
        return self.display_name
