"""The conversation engine: one entry point for chat, phone and SMS.

    conversation = conversation_start(channel="chat")
    result = conversation_turn(conversation=conversation, text="a cleaning tomorrow at 10")
    result.text, result.finished, result.outcome

Every function works on the tenant in context. A turn reads the conversation
and its trimmed history, asks the provider (see ``agent.providers``), then
stores the customer's message, the tool calls, the reply, the new state and the
outcome in one short transaction: a turn is stored whole or not at all. No
transaction is open while the provider runs (it may wait seconds on an LLM);
the tools' own writes (a booking) commit on their own.

``Conversation.state`` holds::

    {"tools": {...},        # ToolRunner.memory: offered slots, proven phones, bookings
     "dialogue": {...},     # the state the answering provider returned
     "dialogue_by": "offline" | "openai"}
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connections
from django.utils import timezone

from agent.facts import business_facts_cached
from agent.models import DEFAULT_GREETING, ChatSettings, Conversation, Message
from agent.providers import HistoryItem, Provider, TurnInput, TurnOutput, provider_get
from agent.tools import ToolRunner
from booking.phones import phone_normalize_or_none
from booking.selectors import business_region, profile_get
from tenants.context import current_alias, tenant_atomic

logger = logging.getLogger(__name__)

TOO_LONG = ("Sorry, that message is too long for me. Please keep it under {limit} "
            "characters.")
EMPTY = "Sorry, I didn't catch that. How can I help?"
BROKEN = ("Sorry, something went wrong on our side. Please try again in a moment{phone}.")


@dataclass(frozen=True)
class TurnResult:
    text: str
    # The assistant said goodbye: the phone flow hangs up after speaking ``text``.
    finished: bool
    outcome: str  # Conversation.Outcome value after this turn
    provider: str = ""  # who answered ("openai", "offline"; "" when no provider ran)


# --- writing ------------------------------------------------------------------------

@contextmanager
def _conversation_write() -> Iterator[None]:
    """A transaction on the business in context, queued behind this process's other writers."""
    if connections[current_alias()].in_atomic_block:
        # Called inside a caller's transaction: it may already hold the database's
        # lock, and waiting for the process's queue here could deadlock.
        with tenant_atomic():
            yield
        return
    # Durable: queued behind the business's other writers (tenants.context).
    with tenant_atomic(durable=True):
        yield


# --- settings ------------------------------------------------------------------------


def chat_settings_get() -> ChatSettings:
    """The business's chat settings, created on first use."""
    found = ChatSettings.objects.filter(pk=1).first()
    if found is not None:
        return found
    # A fixed pk makes two first uses at once agree on one row.
    created, _ = ChatSettings.objects.get_or_create(pk=1)
    return created


def greeting_text() -> str:
    facts = business_facts_cached(now=timezone.now())
    greeting = facts.greeting.strip()
    if greeting:
        return greeting
    name = facts.name
    return (f"Hi! I'm the booking assistant of {name}. How can I help you today?"
            if name else DEFAULT_GREETING)


# --- conversations ---------------------------------------------------------------------


def _e164(phone: str) -> str:
    if not phone:
        return ""
    return phone_normalize_or_none(phone, region=business_region()) or ""


def conversation_start(
    *, channel: str, external_key: str = "", customer_phone: str = "", greet: bool = True
) -> Conversation:
    """A new conversation; the greeting is stored as its first message (``greet``)."""
    if channel not in Conversation.Channel.values:
        raise ValueError(f"unknown channel {channel!r}")
    phone = _e164(customer_phone)
    greeting = greeting_text() if greet else ""
    with _conversation_write():
        conversation = Conversation.objects.create(
            channel=channel, external_key=external_key, customer_phone=phone
        )
        if greet:
            Message.objects.create(
                conversation=conversation, role=Message.Role.ASSISTANT, text=greeting
            )
    return conversation


def conversation_get(public_id: str, *, channel: str) -> Conversation | None:
    """The conversation with this public id on ``channel``, or None."""
    if not isinstance(public_id, str) or not 0 < len(public_id) <= 32:
        return None
    return Conversation.objects.filter(public_id=public_id, channel=channel).first()


def conversation_for_key(
    *, channel: str, external_key: str, customer_phone: str = "", greet: bool = False
) -> Conversation:
    """The conversation of an outside id (a CallSid, an SMS number), created if new."""
    if not external_key:
        raise ValueError("external_key is required")
    found = Conversation.objects.filter(channel=channel, external_key=external_key).first()
    if found is not None:
        return found
    try:
        return conversation_start(channel=channel, external_key=external_key,
                                  customer_phone=customer_phone, greet=greet)
    except IntegrityError:
        # Two webhooks of one call at once: the first one's row answers both.
        return Conversation.objects.get(channel=channel, external_key=external_key)


def conversation_end(*, conversation: Conversation, outcome: str = "abandoned") -> Conversation:
    """Close a conversation (a hang-up): an open one gets ``outcome``, others keep theirs."""
    if outcome not in Conversation.Outcome.values:
        raise ValueError(f"unknown outcome {outcome!r}")
    Conversation.objects.filter(pk=conversation.pk, outcome=Conversation.Outcome.OPEN).update(
        outcome=outcome, updated_at=timezone.now()
    )
    conversation.refresh_from_db(fields=["outcome", "updated_at"])
    return conversation


def conversation_history(conversation: Conversation, *, limit: int) -> tuple[HistoryItem, ...]:
    """The last ``limit`` customer/assistant messages, oldest first."""
    rows = list(
        Message.objects.filter(
            conversation=conversation, role__in=[Message.Role.USER, Message.Role.ASSISTANT]
        ).order_by("-created_at", "-pk").values_list("role", "text")[:limit]
    )
    return tuple(
        HistoryItem(role="user" if role == Message.Role.USER else "assistant", text=text)
        for role, text in reversed(rows)
    )


def _broken_text() -> str:
    phone = profile_get().phone
    return BROKEN.format(phone=f" or call us at {phone}" if phone else "")


def conversation_turn(
    *,
    conversation: Conversation,
    text: str,
    now: datetime | None = None,
    timeout: float | None = None,
    provider: Provider | None = None,
) -> TurnResult:
    """Answer one customer message.

    ``timeout`` bounds the provider's time (default AGENT_TURN_TIMEOUT_SECONDS;
    the phone flow passes less); past it the offline assistant answers.
    """
    text = (text or "").strip()
    limit = settings.AGENT_MAX_MESSAGE_CHARS
    if not text:
        return TurnResult(text=EMPTY, finished=False, outcome=conversation.outcome)
    if len(text) > limit:
        # Refused before anything is stored or sent to a model.
        return TurnResult(text=TOO_LONG.format(limit=f"{limit:,}"), finished=False,
                          outcome=conversation.outcome)
    if connections[current_alias()].in_atomic_block:
        # A provider may wait seconds on an LLM: never while holding the write lock.
        raise RuntimeError("conversation_turn must not run inside a transaction")
    now = now or timezone.now()
    budget = settings.AGENT_TURN_TIMEOUT_SECONDS if timeout is None else timeout
    deadline = time.monotonic() + budget

    chosen = provider or provider_get()
    conversation.refresh_from_db(fields=["state", "outcome", "customer_phone"])
    history = (
        conversation_history(conversation, limit=settings.AGENT_HISTORY_MESSAGES)
        if getattr(chosen, "reads_history", True) else ()
    )
    # Stamped now, stored with the reply: the transcript keeps the order of events.
    asked = Message(conversation=conversation, role=Message.Role.USER, text=text)

    state: dict[str, Any] = conversation.state if isinstance(conversation.state, dict) else {}
    facts = business_facts_cached(now=now)
    runner = ToolRunner(
        channel=conversation.channel, now=now, facts=facts, memory=state.get("tools"),
        caller_phone=conversation.customer_phone,
    )
    turn = TurnInput(
        conversation_id=conversation.public_id,
        channel=conversation.channel,
        text=text,
        history=history,
        state=dict(state.get("dialogue") or {}),
        state_by=str(state.get("dialogue_by") or ""),
        now=now,
        facts=facts,
        tools=runner,
        customer_phone=conversation.customer_phone or runner.verified_phone,
        deadline=deadline,
    )
    try:
        output = chosen.reply(turn)
    except Exception:
        # The offline assistant is the last resort; if even it fails, say sorry.
        logger.exception("provider %s failed on a turn", chosen.name)
        output = TurnOutput(text=_broken_text(), provider="", tool_calls=tuple(runner.calls))

    outcome = output.outcome or runner.outcome or conversation.outcome
    if outcome not in Conversation.Outcome.values:
        outcome = conversation.outcome
    messages = [
        asked,
        *(
            Message(conversation=conversation, role=Message.Role.TOOL, tool_name=call.name[:64],
                    tool_args=call.arguments, tool_result=call.result)
            for call in runner.calls
        ),
        Message(conversation=conversation, role=Message.Role.ASSISTANT, text=output.text,
                provider=output.provider),
    ]
    with _conversation_write():
        Message.objects.bulk_create(messages)
        conversation.state = {
            "tools": runner.memory,
            "dialogue": output.state,
            "dialogue_by": output.provider,
        }
        conversation.outcome = outcome
        fields = ["state", "outcome", "updated_at"]
        if not conversation.customer_phone and runner.verified_phone:
            conversation.customer_phone = runner.verified_phone
            fields.append("customer_phone")
        conversation.save(update_fields=fields)
    return TurnResult(text=output.text, finished=output.finished, outcome=outcome,
                      provider=output.provider)
