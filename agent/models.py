"""The conversation store: every chat, call and text the assistant handles.

Tenant data (it lives in the business's own database). Chat, phone and SMS
share these tables and the one engine in ``agent.engine``.
"""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q
from django.utils import timezone

DEFAULT_GREETING = "Hi! I'm the booking assistant. How can I help you today?"


def new_public_id() -> str:
    # The id a browser holds to resume a chat: unguessable, unlike the row's pk.
    return secrets.token_urlsafe(18)


class Conversation(models.Model):
    class Channel(models.TextChoices):
        CHAT = "chat", "Chat"
        PHONE = "phone", "Phone"
        SMS = "sms", "SMS"

    class Outcome(models.TextChoices):
        OPEN = "open", "Open"
        BOOKED = "booked", "Booked"
        CANCELLED = "cancelled", "Cancelled"
        RESCHEDULED = "rescheduled", "Rescheduled"
        WAITLISTED = "waitlisted", "Waitlisted"
        HANDED_OFF = "handed_off", "Handed off to staff"
        ABANDONED = "abandoned", "Abandoned"

    public_id = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    # The outside system's id for it: Twilio's CallSid, or the texting phone number.
    external_key = models.CharField(max_length=64, blank=True, default="")
    # Caller ID on the phone, the sender on SMS, or a number the customer proved in chat.
    customer_phone = models.CharField(max_length=20, blank=True)
    # The dialogue's memory between turns (see agent.engine for its shape).
    state = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-pk"]
        indexes = [models.Index(fields=["updated_at"], name="conversation_updated_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_key"],
                condition=~Q(external_key=""),
                name="conversation_external_key_per_channel",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.created_at:%Y-%m-%d %H:%M}"


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", "Customer"
        ASSISTANT = "assistant", "Assistant"
        TOOL = "tool", "Tool"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    text = models.TextField(blank=True)
    tool_name = models.CharField(max_length=64, blank=True)
    tool_args = models.JSONField(null=True, blank=True)
    tool_result = models.JSONField(null=True, blank=True)
    # Which provider wrote an assistant message (openai, offline, fallback).
    provider = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="message_conversation_idx")
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()}: {self.text[:40] or self.tool_name}"


class ChatSettings(models.Model):
    """The business's chat widget settings; one row (pk=1), see ``chat_settings_get``."""

    # Sites allowed to frame the chat page (CSP frame-ancestors), e.g.
    # ["https://www.example.com", "*.example.org"].
    allowed_frame_domains = models.JSONField(default=list, blank=True)
    greeting = models.CharField(
        max_length=500, blank=True,
        help_text="The first message customers see. Empty: a standard greeting.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "chat settings"
        verbose_name_plural = "chat settings"

    def __str__(self) -> str:
        return "Chat settings"
