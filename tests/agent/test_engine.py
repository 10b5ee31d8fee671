from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.test import override_settings

from agent.engine import (
    chat_settings_get,
    conversation_end,
    conversation_for_key,
    conversation_start,
    conversation_turn,
    greeting_text,
)
from agent.models import Conversation, Message
from agent.offline import OfflineProvider
from agent.providers import FallbackProvider, TurnInput, TurnOutput, provider_get
from booking.models import Appointment
from tenants.context import tenant_atomic
from tests.booking.conftest import Shop, local


@dataclass
class Recorder:
    """A provider that answers from a list and remembers what it was given."""

    answers: list[TurnOutput] = field(default_factory=list)
    seen: list[TurnInput] = field(default_factory=list)
    name: str = "recorder"

    def reply(self, turn: TurnInput) -> TurnOutput:
        self.seen.append(turn)
        if self.answers:
            return self.answers.pop(0)
        return TurnOutput(text=f"echo {turn.text}", provider=self.name)


class Exploding:
    name = "exploding"

    def reply(self, turn: TurnInput) -> TurnOutput:
        raise ZeroDivisionError


def say(conversation: Conversation, text: str) -> str:
    return conversation_turn(conversation=conversation, text=text).text


class Booker:
    """A provider that books Tuesday 9:00 through the tools, as a model would."""

    name = "booker"

    def reply(self, turn: TurnInput) -> TurnOutput:
        offered = turn.tools.run("check_availability", {
            "service": "Cleaning", "date": "2026-03-03", "time": "09:00"})
        booked = turn.tools.run("create_appointment", {
            "service": "Cleaning", "start": offered["slots"][0]["start"],
            "name": "Ada Lovelace", "phone": "212-555-0100"})
        return TurnOutput(text=f"Booked {booked['reference']}", provider=self.name,
                          state={"step": "done"})


def test_a_turn_stores_the_message_the_tool_calls_and_the_reply(shop: Shop) -> None:
    conversation = conversation_start(channel="chat")
    result = conversation_turn(conversation=conversation, text="Cleaning Tuesday 9am",
                               provider=Booker())

    appointment = Appointment.objects.get()
    assert result.text == f"Booked {appointment.reference}"
    assert (appointment.channel, appointment.start) == ("chat", local(2026, 3, 3, 9, 0))
    assert (result.outcome, result.finished, result.provider) == ("booked", False, "booker")
    conversation.refresh_from_db()
    assert conversation.outcome == "booked"
    assert conversation.customer_phone == "+12125550100"
    assert conversation.state["dialogue"] == {"step": "done"}
    assert conversation.state["tools"]["booked"] == [appointment.reference]

    stored = list(conversation.messages.values_list("role", "tool_name", "text"))
    assert stored == [
        ("assistant", "", greeting_text()),
        ("user", "", "Cleaning Tuesday 9am"),
        ("tool", "check_availability", ""),
        ("tool", "create_appointment", ""),
        ("assistant", "", result.text),
    ]
    booked = conversation.messages.get(tool_name="create_appointment")
    assert booked.tool_args["phone"] == "212-555-0100"
    assert booked.tool_result["reference"] == appointment.reference
    assert conversation.messages.last().provider == "booker"


def test_the_offline_assistant_books_over_several_turns(shop: Shop) -> None:
    conversation = conversation_start(channel="chat")
    for text in ("I'd like to book a cleaning on Tuesday at 9am", "Ada Lovelace",
                 "212-555-0100"):
        say(conversation, text)
    assert not Appointment.objects.exists(), "nothing is booked before the customer confirms"
    done = conversation_turn(conversation=conversation, text="yes")

    appointment = Appointment.objects.get()
    assert appointment.reference in done.text
    assert (appointment.channel, appointment.start) == ("chat", local(2026, 3, 3, 9, 0))
    assert appointment.customer.name == "Ada Lovelace"
    assert (done.outcome, done.provider) == ("booked", "offline")


def test_a_too_long_message_is_refused_and_nothing_else_happens(shop: Shop) -> None:
    conversation = conversation_start(channel="chat")
    before = Message.objects.count()
    with override_settings(AGENT_MAX_MESSAGE_CHARS=20):
        result = conversation_turn(conversation=conversation, text="x" * 21,
                                   provider=Exploding())
    assert "under 20 characters" in result.text
    assert Message.objects.count() == before
    assert conversation_turn(conversation=conversation, text="   ",
                             provider=Exploding()).text.startswith("Sorry")
    assert Message.objects.count() == before


def test_a_turn_refuses_to_run_inside_a_transaction(shop: Shop) -> None:
    conversation = conversation_start(channel="chat")
    with tenant_atomic(), pytest.raises(RuntimeError, match="inside a transaction"):
        conversation_turn(conversation=conversation, text="hello", provider=Recorder())


def test_a_failing_provider_still_gets_the_customer_an_answer(shop: Shop) -> None:
    conversation = conversation_start(channel="chat")
    result = conversation_turn(conversation=conversation, text="hello", provider=Exploding())
    assert result.text.startswith("Sorry, something went wrong on our side")
    assert conversation.messages.last().text == result.text


def test_the_provider_gets_trimmed_history_state_and_the_business(shop: Shop) -> None:
    conversation = conversation_start(channel="chat")
    recorder = Recorder()
    with override_settings(AGENT_HISTORY_MESSAGES=3):
        for n in range(4):
            recorder.answers.append(TurnOutput(text=f"answer {n}", provider="recorder",
                                               state={"turns": n}))
            conversation_turn(conversation=conversation, text=f"question {n}",
                              provider=recorder)
    last = recorder.seen[-1]
    assert [(h.role, h.text) for h in last.history] == [
        ("assistant", "answer 1"), ("user", "question 2"), ("assistant", "answer 2"),
    ]
    assert last.text == "question 3"
    assert (dict(last.state), last.state_by) == ({"turns": 2}, "recorder")
    assert recorder.seen[0].state_by == ""
    assert last.facts.name == "Test Dental"
    assert last.local_now.utcoffset().total_seconds() == -5 * 3600
    assert last.remaining() > 0
    conversation.refresh_from_db()
    assert conversation.state["dialogue"] == {"turns": 3}
    assert conversation.state["dialogue_by"] == "recorder"


def test_a_timeout_sets_the_provider_deadline(shop: Shop) -> None:
    conversation = conversation_start(channel="phone", customer_phone="(212) 555-0100")
    recorder = Recorder()
    conversation_turn(conversation=conversation, text="hi", timeout=2.5, provider=recorder)
    turn = recorder.seen[0]
    assert 2.0 < turn.remaining() <= 2.5
    assert turn.channel == "phone"
    assert turn.customer_phone == "+12125550100"
    assert turn.tools.caller_phone == "+12125550100"


def test_one_conversation_per_outside_key_and_channel(shop: Shop) -> None:
    call = conversation_for_key(channel="phone", external_key="CA123", customer_phone="+1212555"
                                "0100")
    assert conversation_for_key(channel="phone", external_key="CA123") == call
    text = conversation_for_key(channel="sms", external_key="CA123")
    assert text != call
    assert call.customer_phone == "+12125550100"
    assert not call.messages.exists(), "voice speaks its own greeting"
    with pytest.raises(ValueError):
        conversation_for_key(channel="phone", external_key="")


def test_ending_a_conversation_marks_only_open_ones(shop: Shop) -> None:
    open_one = conversation_start(channel="phone")
    assert conversation_end(conversation=open_one).outcome == "abandoned"
    booked = conversation_start(channel="phone")
    Conversation.objects.filter(pk=booked.pk).update(outcome="booked")
    assert conversation_end(conversation=booked).outcome == "booked"


def test_public_ids_are_random_tokens_not_row_numbers(shop: Shop) -> None:
    first, second = conversation_start(channel="chat"), conversation_start(channel="chat")
    assert first.public_id != second.public_id
    assert len(first.public_id) >= 20
    assert str(first.pk) not in (first.public_id, second.public_id)


def test_the_greeting_comes_from_the_chat_settings(shop: Shop) -> None:
    assert greeting_text() == ("Hi! I'm the booking assistant of Test Dental. "
                               "How can I help you today?")
    settings_row = chat_settings_get()
    settings_row.greeting = "Welcome to Test Dental!"
    settings_row.save()
    conversation = conversation_start(channel="chat")
    assert conversation.messages.get().text == "Welcome to Test Dental!"
    assert chat_settings_get().pk == settings_row.pk


@pytest.mark.parametrize(
    ("mode", "key", "expected"),
    [("auto", "", "offline"), ("offline", "sk-test", "offline"), ("auto", "sk-test", "openai"),
     ("openai", "", "openai")],
)
def test_the_provider_follows_the_settings(mode: str, key: str, expected: str) -> None:
    with override_settings(AGENT_PROVIDER=mode, OPENAI_API_KEY=key):
        provider = provider_get()
    assert provider.name == expected
    if expected == "openai":
        assert isinstance(provider, FallbackProvider)
        assert isinstance(provider.fallback, OfflineProvider)


def test_the_offline_assistant_answers_questions_about_the_business(shop: Shop) -> None:
    conversation = conversation_start(channel="chat")
    assert "Cleaning" in say(conversation, "what services do you offer?")
    assert "350" in say(conversation, "how much is whitening?")
