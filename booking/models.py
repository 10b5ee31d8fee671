"""Tenant data: everything here lives in the business's own database."""

from __future__ import annotations

import secrets
from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q


def default_reminder_offsets() -> list[int]:
    return [1440, 120]


CALENDAR_TOKEN_LENGTH = 43  # secrets.token_urlsafe(32)


def new_calendar_token() -> str:
    """A fresh secret for a calendar feed URL (store it; empty means the feed is off)."""
    return secrets.token_urlsafe(32)


def _calendar_token_field() -> models.CharField:
    # Not unique: every disabled feed shares the empty value. Looked up per
    # tenant database, so the index keeps a feed request to one probe.
    return models.CharField(
        max_length=64, blank=True, default="", db_index=True,
        help_text="Secret part of the calendar feed address; empty turns the feed off.",
    )


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
    # The whole business's appointments as an iCalendar feed.
    calendar_token = _calendar_token_field()
    updated_at = models.DateTimeField(auto_now=True)
    # A new random value whenever a service, a staff member, who offers what,
    # working hours or a closure is written, set by database triggers
    # (booking.catalog) so that no write path, bulk or raw, can forget it. A
    # process that cached the catalogue compares it with this row, read in the
    # same transaction, instead of reading the catalogue again.
    catalog_version = models.BigIntegerField(default=0, editable=False)

    class Meta:
        verbose_name = "business profile"

    def __str__(self) -> str:
        return self.display_name


# Bounds shared by the models, the setup file and the API, so a value one accepts
# the others accept too.
MAX_SERVICE_MINUTES = 12 * 60
MAX_BUFFER_MINUTES = 4 * 60
# No appointment's buffered span is longer than this, so "which blocks overlap
# [a, b)" can bound block_start from below and use the (staff, block_start) index.
MAX_BLOCK = timedelta(minutes=MAX_SERVICE_MINUTES + 2 * MAX_BUFFER_MINUTES)


class Service(models.Model):
    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True, max_length=2000)
    duration_minutes = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(5), MaxValueValidator(MAX_SERVICE_MINUTES)]
    )
    price = models.DecimalField(
        max_digits=9, decimal_places=2, default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    # Set-up and clean-up time that blocks the staff member but is not sold.
    buffer_before_minutes = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(MAX_BUFFER_MINUTES)]
    )
    buffer_after_minutes = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(MAX_BUFFER_MINUTES)]
    )
    # Retired services stay (appointments point at them) but are no longer offered.
    active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(duration_minutes__gt=0), name="service_has_duration"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class StaffMember(models.Model):
    # Unique because the setup file refers to staff by name.
    name = models.CharField(max_length=120, unique=True)
    services = models.ManyToManyField(Service, related_name="staff", blank=True)
    active = models.BooleanField(default=True)
    # This member's own appointments as an iCalendar feed.
    calendar_token = _calendar_token_field()

    class Meta:
        ordering = ["name"]
        verbose_name = "staff member"

    def __str__(self) -> str:
        return self.name


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class WorkingHours(models.Model):
    """One working interval in local wall time; several a day, and the gaps are breaks."""

    staff = models.ForeignKey(StaffMember, on_delete=models.CASCADE, related_name="hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    start = models.TimeField()
    end = models.TimeField()

    class Meta:
        ordering = ["staff", "weekday", "start"]
        verbose_name = "working hours"
        verbose_name_plural = "working hours"
        constraints = [
            models.CheckConstraint(condition=Q(start__lt=F("end")), name="hours_start_before_end"),
            models.CheckConstraint(condition=Q(weekday__lte=6), name="hours_weekday_0_to_6"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.start:%H:%M}-{self.end:%H:%M}"

    def clean(self) -> None:
        if self.start is not None and self.end is not None and not self.start < self.end:
            raise ValidationError({"end": "The end must be after the start (same day)."})
        if self.staff_id is None or self.start is None or self.end is None:
            return
        overlapping = WorkingHours.objects.filter(
            staff_id=self.staff_id, weekday=self.weekday, start__lt=self.end, end__gt=self.start
        ).exclude(pk=self.pk)
        if overlapping.exists():
            raise ValidationError("These hours overlap other hours of the same day.")


class Closure(models.Model):
    """The whole business (staff empty) or one staff member is closed for [start, end)."""

    start = models.DateTimeField()
    end = models.DateTimeField()
    staff = models.ForeignKey(
        StaffMember, on_delete=models.CASCADE, null=True, blank=True, related_name="closures"
    )
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["start"]
        constraints = [
            models.CheckConstraint(
                condition=Q(start__lt=F("end")), name="closure_start_before_end"
            ),
        ]

    def __str__(self) -> str:
        return self.reason or f"Closed {self.start:%Y-%m-%d}"

    def clean(self) -> None:
        if self.start is not None and self.end is not None and not self.start < self.end:
            raise ValidationError({"end": "The end must be after the start."})


class Customer(models.Model):
    name = models.CharField(max_length=120)
    # E.164 (+12125550100), normalised by the write path; customers are found by phone.
    phone = models.CharField(max_length=20, unique=True)
    email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Appointment(models.Model):
    class Status(models.TextChoices):
        BOOKED = "booked", "Booked"
        CANCELLED = "cancelled", "Cancelled"
        COMPLETED = "completed", "Completed"
        NO_SHOW = "no_show", "No-show"

    class Channel(models.TextChoices):
        WEB = "web", "Booking page"
        API = "api", "API"
        CHAT = "chat", "Chat"
        PHONE = "phone", "Phone"
        SMS = "sms", "SMS"
        DASHBOARD = "dashboard", "Dashboard"
        # Booked from the waitlist: an accepted offer or an automatic booking.
        WAITLIST = "waitlist", "Waitlist"

    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="appointments")
    staff = models.ForeignKey(StaffMember, on_delete=models.PROTECT, related_name="appointments")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="appointments")
    start = models.DateTimeField()
    end = models.DateTimeField()
    # The span the staff member is blocked, buffers included. Stored (not derived
    # from the service) so the overlap check is one indexed query and a later
    # change of a service's buffers does not move existing appointments.
    block_start = models.DateTimeField()
    block_end = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.BOOKED)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    reference = models.CharField(max_length=7, unique=True)
    idempotency_key = models.CharField(max_length=100, unique=True, null=True, blank=True)
    # Hash of what was asked for with the idempotency key: a replay must match it.
    request_fingerprint = models.CharField(max_length=64, blank=True)
    notes = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["start"]
        indexes = [
            models.Index(fields=["staff", "block_start"], name="appt_staff_block_idx"),
            models.Index(fields=["status", "start"], name="appt_status_start_idx"),
            models.Index(fields=["created_at"], name="appt_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(start__lt=F("end")), name="appt_start_before_end"),
            models.CheckConstraint(
                condition=Q(block_start__lte=F("start")) & Q(block_end__gte=F("end")),
                name="appt_block_covers_service",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.start:%Y-%m-%d %H:%M}Z"

    @property
    def is_active(self) -> bool:
        """Whether it still holds its slot (anything but cancelled)."""
        return self.status != self.Status.CANCELLED


class WaitlistEntry(models.Model):
    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting"
        OFFERED = "offered", "Offered"
        BOOKED = "booked", "Booked"
        EXPIRED = "expired", "Expired"
        REMOVED = "removed", "Removed"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="waitlist")
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="waitlist")
    staff = models.ForeignKey(
        StaffMember, on_delete=models.CASCADE, null=True, blank=True, related_name="waitlist"
    )
    # Local wall-time windows the customer can make:
    # [{"date": "2026-03-09", "start": "09:00", "end": "12:00"}, ...]; empty = any time
    # between earliest and latest.
    windows = models.JSONField(default=list, blank=True)
    earliest = models.DateTimeField(null=True, blank=True)
    latest = models.DateTimeField(null=True, blank=True)
    # Book the freed slot straight away instead of offering it first.
    auto_book = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WAITING)
    offer_expires_at = models.DateTimeField(null=True, blank=True)
    offered_start = models.DateTimeField(null=True, blank=True)
    offered_staff = models.ForeignKey(
        StaffMember, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    appointment = models.ForeignKey(
        Appointment, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="The appointment this entry turned into.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        verbose_name = "waitlist entry"
        verbose_name_plural = "waitlist entries"
        indexes = [models.Index(fields=["status", "service"], name="waitlist_status_service_idx")]

    def __str__(self) -> str:
        return f"{self.customer} waiting for {self.service}"


class Notification(models.Model):
    """One message to a customer on one channel: scheduled, then sent, failed or skipped.

    The send log the dashboard shows. ``dedupe_key`` names the message's purpose
    (e.g. the 24-hour reminder of appointment 7 at its current start, by SMS), so
    scheduling the same message twice finds the existing row, and a task run twice
    finds it already sent.
    """

    class Kind(models.TextChoices):
        CONFIRMATION = "confirmation", "Confirmation"
        REMINDER = "reminder", "Reminder"
        CANCELLATION = "cancellation", "Cancellation"
        RESCHEDULE = "reschedule", "Reschedule"
        WAITLIST_OFFER = "waitlist_offer", "Waitlist offer"
        WAITLIST_BOOKED = "waitlist_booked", "Booked from waitlist"

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        SMS = "sms", "SMS"

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        # Claimed by a worker and handed to the provider; a crash here leaves it
        # sending rather than risk a second copy.
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    appointment = models.ForeignKey(
        Appointment, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="notifications",
    )
    waitlist_entry = models.ForeignKey(
        WaitlistEntry, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="notifications",
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    # The address or E.164 number it went to, as it was when scheduled.
    recipient = models.CharField(max_length=254)
    # The appointment (or offered) start the message is about; a reminder whose
    # appointment no longer starts then is skipped.
    for_start = models.DateTimeField(null=True, blank=True)
    scheduled_for = models.DateTimeField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SCHEDULED)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Error class or provider code only: provider messages can quote the recipient.
    last_error = models.CharField(max_length=200, blank=True)
    # The provider's id for the message (Twilio SID, email Message-ID).
    external_id = models.CharField(max_length=200, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    dedupe_key = models.CharField(max_length=200, unique=True)

    class Meta:
        ordering = ["scheduled_for", "pk"]
        indexes = [
            models.Index(fields=["status", "scheduled_for"], name="notif_status_due_idx"),
            models.Index(fields=["appointment", "kind"], name="notif_appt_kind_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.get_channel_display()} ({self.status})"
