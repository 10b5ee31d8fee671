"""Writes of the phone flow: call records, silence counting, messages, the booking link.

Every function works on the tenant in context. Twilio may deliver a webhook
twice (retries, a status callback racing the last turn), so each write is
idempotent: the same request applied again leaves the same row.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError
from django.db.models import F
from django.utils import timezone

from agent.engine import conversation_end
from agent.models import Conversation
from booking import sms
from booking.phones import phone_normalize_or_none
from booking.selectors import business_region, profile_get
from tenants.context import current_tenant, tenant_atomic
from voice.models import Call

logger = logging.getLogger(__name__)

# Twilio's CallStatus values after which nothing more happens on the call.
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
# Conversation outcomes a call reports as its own (the rest keep the call's).
CONVERSATION_OUTCOMES = frozenset({
    Call.Outcome.BOOKED, Call.Outcome.CANCELLED, Call.Outcome.RESCHEDULED,
    Call.Outcome.WAITLISTED,
})


def call_get(call_sid: str) -> Call | None:
    if not call_sid:
        return None
    return Call.objects.filter(call_sid=call_sid).select_related("conversation").first()


def call_begin(
    *, call_sid: str, caller: str, called: str, conversation: Conversation | None = None,
    outcome: str = Call.Outcome.OPEN,
) -> Call:
    """The call's row, created on its first webhook (a repeated one finds it)."""
    found = call_get(call_sid)
    if found is not None:
        return found
    try:
        with tenant_atomic():
            return Call.objects.create(
                call_sid=call_sid, caller=caller[:32], called=called[:32],
                conversation=conversation, outcome=outcome,
            )
    except IntegrityError:
        # Twilio retried the first webhook while it was running: one row answers both.
        return Call.objects.get(call_sid=call_sid)


def call_set_outcome(*, call: Call, outcome: str) -> None:
    if outcome not in Call.Outcome.values:
        raise ValueError(f"unknown call outcome {outcome!r}")
    Call.objects.filter(pk=call.pk).update(outcome=outcome)
    call.outcome = outcome


def call_outcome_from_conversation(*, call: Call, conversation_outcome: str) -> None:
    """Mirror what the conversation achieved (booked, cancelled...) on the call."""
    if conversation_outcome in CONVERSATION_OUTCOMES:
        call_set_outcome(call=call, outcome=conversation_outcome)


def call_silence(*, call: Call) -> int:
    """Count one turn in which the caller said nothing; returns the turns in a row."""
    Call.objects.filter(pk=call.pk).update(silent_turns=F("silent_turns") + 1)
    call.refresh_from_db(fields=["silent_turns"])
    return call.silent_turns


def call_heard(*, call: Call) -> None:
    if call.silent_turns:
        Call.objects.filter(pk=call.pk).update(silent_turns=0)
        call.silent_turns = 0


def call_record_status(
    *, call_sid: str, status: str, duration: int | None, caller: str = "", called: str = "",
    now: datetime | None = None,
) -> Call:
    """Apply Twilio's status callback; applying the same callback again changes nothing."""
    now = now or timezone.now()
    call = call_begin(call_sid=call_sid, caller=caller, called=called)
    status = status[:16]
    final = status in FINAL_STATUSES
    updates: dict[str, object] = {"status": status}
    if duration is not None:
        updates["duration_seconds"] = duration
    if final and call.ended_at is None:
        updates["ended_at"] = now
        if call.duration_seconds is None and duration is None:
            updates["duration_seconds"] = max(0, int((now - call.started_at).total_seconds()))
    Call.objects.filter(pk=call.pk).update(**updates)
    if final:
        Call.objects.filter(pk=call.pk, outcome=Call.Outcome.OPEN).update(
            outcome=Call.Outcome.ABANDONED
        )
        if call.conversation is not None:
            conversation_end(conversation=call.conversation, outcome="abandoned")
    call.refresh_from_db()
    return call


def call_message_store(
    *, call: Call, recording_url: str | None = None, transcription: str | None = None
) -> None:
    """Keep the message a caller left for the team (its recording, later its text)."""
    updates: dict[str, object] = {"outcome": Call.Outcome.MESSAGE}
    if recording_url is not None:
        updates["recording_url"] = recording_url[:500]
    if transcription is not None:
        updates["transcription"] = transcription
    Call.objects.filter(pk=call.pk).update(**updates)
    if call.conversation is not None:
        conversation_end(conversation=call.conversation, outcome="handed_off")


def booking_link() -> str:
    return f"{settings.PUBLIC_BASE_URL}/b/{current_tenant().slug}/"


def booking_link_send(*, to: str) -> bool:
    """Text the business's booking page to ``to``; False when it cannot be sent.

    A failed text must not cost the caller the rest of the call, so errors are
    logged (by class only: the number is the customer's) and reported as False.
    """
    number = phone_normalize_or_none(to, region=business_region()) if to else None
    if not number:
        return False
    name = profile_get().display_name or current_tenant().name
    try:
        sms.send_sms(to=number, body=f"{name}: book your appointment online at {booking_link()}")
    except Exception as exc:  # noqa: BLE001 - any provider failure: the call goes on
        logger.warning("booking link text failed (%s)", type(exc).__name__)
        return False
    return True
