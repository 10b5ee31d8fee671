"""Who writes the assistant's replies: the interface every provider implements.

A provider answers one turn. It receives a ``TurnInput`` (the customer's text,
the trimmed history, its own dialogue state, "now", what the business is and a
``ToolRunner`` bound to the business) and returns a ``TurnOutput`` (the reply,
its new state, an outcome when the conversation reached one). It never touches
the conversation store: the engine (``agent.engine``) loads and saves
everything around the call, so no transaction is open while a provider thinks.

Providers: ``openai`` (Chat Completions with tools, ``agent.openai_provider``)
and ``offline`` (deterministic, ``agent.offline``). ``provider_get()`` picks one
from the settings; the OpenAI one always comes wrapped in ``FallbackProvider`` so
an LLM failure still gets the customer an answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from django.conf import settings

from agent.facts import BusinessFacts
from agent.tools import OUTCOMES, ToolCall, ToolRunner

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HistoryItem:
    """One earlier message of the conversation (tool messages are not replayed)."""

    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True)
class TurnInput:
    conversation_id: str  # the public id (Conversation.public_id)
    channel: str  # "chat", "phone" or "sms"
    text: str  # what the customer just said, stripped, at most AGENT_MAX_MESSAGE_CHARS
    # Earlier messages, oldest first, at most AGENT_HISTORY_MESSAGES; excludes ``text``.
    history: tuple[HistoryItem, ...]
    # The dialogue state the previous turn's provider left (a private copy), and
    # that provider's name ("" on the first turn). A provider reads it only when it
    # wrote it itself: another provider's state means nothing to it.
    state: Mapping[str, Any]
    state_by: str
    now: datetime  # aware; convert with facts.timezone for the business's wall clock
    facts: BusinessFacts
    tools: ToolRunner
    # Caller ID (phone) or sender (SMS); in chat a number the customer proved, or "".
    customer_phone: str
    # time.monotonic() by which the reply must be ready (network providers only).
    deadline: float

    @property
    def local_now(self) -> datetime:
        return self.now.astimezone(self.facts.timezone)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


@dataclass(frozen=True)
class TurnOutput:
    text: str
    # Who actually answered ("openai", "offline"); the state below is theirs.
    provider: str
    # The dialogue state for the next turn (JSON-serialisable), replacing the old one.
    state: dict[str, Any] = field(default_factory=dict)
    # "handed_off" or "abandoned" when the dialogue decides so; None leaves the
    # outcome to the tools (a successful booking means "booked", and so on).
    outcome: str | None = None
    # The conversation is over (a goodbye): the phone flow hangs up after saying it.
    finished: bool = False
    tool_calls: tuple[ToolCall, ...] = ()


class Provider(Protocol):
    name: str

    def reply(self, turn: TurnInput) -> TurnOutput: ...


class ProviderFailed(Exception):
    """The provider could not answer (network, timeout, bad response); say nothing of it."""


_WRITE_SENTENCES = {
    "create_appointment": "You're booked: {service} on {when} with {staff}. "
                          "Your reference is {reference}.",
    "cancel_appointment": "Your {service} appointment on {when} ({reference}) is cancelled.",
    "reschedule_appointment": "Your {service} appointment ({reference}) is now on {when} "
                              "with {staff}.",
    "join_waitlist": "You're on the waitlist for {service}; we'll contact you when a slot "
                     "opens.",
}


def writes_summary(calls: list[ToolCall]) -> str:
    """Sentences for the writes already done this turn (so a fallback never hides them)."""
    sentences = []
    for call in calls:
        template = _WRITE_SENTENCES.get(call.name)
        if template and call.ok:
            values = {k: call.result.get(k, "") for k in ("service", "when", "staff", "reference")}
            sentences.append(template.format(**values))
    return " ".join(sentences)


class FallbackProvider:
    """Answers with ``primary``; when it fails the ``fallback`` answers the same turn."""

    def __init__(self, primary: Provider, fallback: Provider) -> None:
        self.primary, self.fallback = primary, fallback
        self.name = primary.name

    def reply(self, turn: TurnInput) -> TurnOutput:
        try:
            return self.primary.reply(turn)
        except Exception as exc:  # noqa: BLE001 - any failure: the customer still gets an answer
            # The error class only: messages of HTTP errors can quote the request.
            logger.warning(
                "provider %s failed (%s); the %s provider answers this turn",
                self.primary.name, type(exc).__name__, self.fallback.name,
            )
        done = [call for call in turn.tools.calls if call.ok and call.name in OUTCOMES]
        if done:
            # The LLM changed something before failing: report exactly that, and
            # let no other dialogue act on a turn it did not follow.
            return TurnOutput(
                text=f"{writes_summary(done)} Is there anything else I can help with?",
                provider=self.fallback.name, tool_calls=tuple(turn.tools.calls),
            )
        answer = self.fallback.reply(turn)
        return TurnOutput(
            text=answer.text, provider=answer.provider, state=answer.state,
            outcome=answer.outcome, finished=answer.finished, tool_calls=tuple(turn.tools.calls),
        )


def provider_get() -> Provider:
    """The provider the settings ask for (AGENT_PROVIDER: auto, openai or offline)."""
    from agent.offline import OfflineProvider
    from agent.openai_provider import OpenAIProvider

    mode = settings.AGENT_PROVIDER
    if mode == "offline" or (mode == "auto" and not settings.OPENAI_API_KEY):
        return OfflineProvider()
    return FallbackProvider(OpenAIProvider.from_settings(), OfflineProvider())
