"""Phone calls to a business's number (tenant data, in the business's own database).

One ``Call`` row per Twilio CallSid: who called, how it went (``outcome``, the
flow's own view) and what Twilio reported at the end (``status``, ``duration``).
The words said are in the linked ``agent.Conversation``.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Call(models.Model):
    class Outcome(models.TextChoices):
        OPEN = "open", "In progress"
        BOOKED = "booked", "Booked"
        CANCELLED = "cancelled", "Cancelled"
        RESCHEDULED = "rescheduled", "Rescheduled"
        WAITLISTED = "waitlisted", "Waitlisted"
        ENDED = "ended", "Ended by the assistant"
        TRANSFERRED = "transferred", "Transferred to the business"
        MESSAGE = "message", "Left a message"
        LINK_TEXTED = "link_texted", "Booking link texted"
        NOT_ON_PLAN = "not_on_plan", "Phone booking not in plan"
        UNAVAILABLE = "unavailable", "Business unavailable"
        ABANDONED = "abandoned", "Hung up"

    call_sid = models.CharField(max_length=64, unique=True)
    caller = models.CharField(max_length=32, blank=True)  # Twilio's From (caller ID)
    called = models.CharField(max_length=32, blank=True)  # Twilio's To (the business's number)
    # Twilio's CallStatus: queued, ringing, in-progress, completed, busy, failed, ...
    status = models.CharField(max_length=16, blank=True, default="in-progress")
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.OPEN)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    conversation = models.ForeignKey(
        "agent.Conversation", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="calls",
    )
    # Turns in a row where the caller said nothing: the second one ends the call.
    silent_turns = models.PositiveSmallIntegerField(default=0)
    # A message left for the team when no one could take the call.
    recording_url = models.URLField(max_length=500, blank=True)
    transcription = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        indexes = [models.Index(fields=["started_at"], name="call_started_idx")]

    def __str__(self) -> str:
        return f"Call {self.started_at:%Y-%m-%d %H:%M}"
