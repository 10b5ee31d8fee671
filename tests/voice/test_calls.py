"""Whole phone calls through the webhooks, signed like Twilio signs them.

The business is tests/booking/conftest.py's (Ana does Cleaning on weekdays),
time frozen on Monday 2026-03-02 07:00 in New York, the offline assistant
answering. Every TwiML answer is parsed as XML and checked by its structure.
"""

from __future__ import annotations

import time
from datetime import datetime

import pytest
import time_machine
from django.test import Client, override_settings

from agent.models import Conversation, Message
from booking import sms
from booking.models import Appointment, BusinessProfile, Notification
from booking.services import appointment_book
from tenants.context import tenant_context
from tenants.services import tenant_set_status
from tests.booking.conftest import MakeShop, Shop, ada, local
from tests.fakes.openai_server import FakeOpenAI
from tests.voice.conftest import (
    ADA,
    BASE,
    BUSINESS_NUMBER,
    JANE,
    Phone,
    post,
    says,
    sign,
    twiml,
    verbs,
)

BOOK_CLEANING = "Hi, this is Jane Doe, can I book a cleaning tomorrow at 3?"


def appointments(shop: Shop) -> list[tuple[str, str, str, str, str]]:
    with tenant_context(shop.tenant):
        return [
            (a.service.name, f"{a.start.astimezone(local(2026, 1, 1).tzinfo):%Y-%m-%d %H:%M}",
             a.status, a.channel, a.customer.phone)
            for a in Appointment.objects.select_related("service", "customer").order_by("start")
        ]


def call_row(shop: Shop, call: Phone) -> object:
    from voice.models import Call

    with tenant_context(shop.tenant):
        return Call.objects.select_related("conversation").get(call_sid=call.call_sid)


def book_for_ada(shop: Shop, start: datetime) -> Appointment:
    with tenant_context(shop.tenant):
        return appointment_book(service_id=shop.services["Cleaning"], start=start,
                                customer=ada(), channel="web")


def assert_listens(call: Phone) -> None:
    """The answer speaks, then opens a speech <Gather> back to this business's turn URL."""
    assert call.last is not None
    assert verbs(call.last) == ["Gather", "Redirect"]
    gather = call.last.find("Gather")
    assert gather is not None
    action = f"{BASE}/voice/{call.slug}/turn"
    assert gather.attrib["input"] == "speech"
    assert gather.attrib["speechTimeout"] == "auto"
    assert gather.attrib["language"] == "en-US"
    assert gather.attrib["action"] == action
    assert "Cleaning" in gather.attrib["hints"]
    assert [child.tag for child in gather] == ["Say"]
    redirect = call.last.find("Redirect")
    assert redirect is not None and redirect.text == action


# --- booking and cancelling by voice -------------------------------------------------------


def test_a_cleaning_is_booked_by_voice(shop: Shop, client: Client) -> None:
    call = Phone(client, shop.tenant.slug, caller=JANE)
    call.dial()
    assert_listens(call)
    assert call.text().startswith("Thank you for calling Test Dental.")

    call.say(BOOK_CLEANING)
    assert_listens(call)
    assert "Cleaning" in call.text() and "3:00 PM" in call.text()
    assert "(yes/no)" not in call.text()
    assert appointments(shop) == []

    call.say("yes")
    assert_listens(call)
    assert appointments(shop) == [("Cleaning", "2026-03-03 15:00", "booked", "phone", JANE)]
    with tenant_context(shop.tenant):
        reference = Appointment.objects.get().reference
        # The confirmation text goes out through the booking notifications.
        assert Notification.objects.filter(kind="confirmation", channel="sms",
                                           recipient=JANE).exists()
    assert reference in call.text()
    row = call_row(shop, call)
    assert row.outcome == "booked"  # type: ignore[attr-defined]
    assert row.conversation.channel == "phone"  # type: ignore[attr-defined]
    assert row.conversation.customer_phone == JANE  # type: ignore[attr-defined]
    assert row.conversation.external_key == call.call_sid  # type: ignore[attr-defined]

    call.say("no thanks, goodbye")
    assert call.hung_up() and verbs(call.last) == ["Say", "Hangup"]  # type: ignore[arg-type]
    assert appointments(shop) == [("Cleaning", "2026-03-03 15:00", "booked", "phone", JANE)]


def test_the_caller_cancels_by_voice(shop: Shop, client: Client) -> None:
    reference = book_for_ada(shop, local(2026, 3, 4, 9, 0)).reference
    call = Phone(client, shop.tenant.slug, caller=ADA)
    call.dial()
    call.say(f"I need to cancel my appointment, the reference is {reference}")
    assert "cancel" in call.text().lower() and "Cleaning" in call.text()
    assert_listens(call)
    assert [a[2] for a in appointments(shop)] == ["booked"]
    call.say("yes")
    assert [a[2] for a in appointments(shop)] == ["cancelled"]
    assert call_row(shop, call).outcome == "cancelled"  # type: ignore[attr-defined]


# --- silence -------------------------------------------------------------------------------


def test_silence_twice_texts_the_booking_link_and_hangs_up(shop: Shop, client: Client) -> None:
    call = Phone(client, shop.tenant.slug, caller=JANE)
    call.dial()
    call.say("")
    assert_listens(call)
    assert call.text() == "Sorry, I didn't catch that. How can I help you?"
    assert sms.outbox == []

    call.say("")
    assert verbs(call.last) == ["Say", "Hangup"]  # type: ignore[arg-type]
    assert "texted you a link" in call.text()
    assert [(m.to, m.body) for m in sms.outbox] == [
        (JANE, f"Test Dental: book your appointment online at {BASE}/b/{shop.tenant.slug}/")
    ]
    row = call_row(shop, call)
    assert row.outcome == "link_texted"  # type: ignore[attr-defined]
    assert row.conversation.outcome == "abandoned"  # type: ignore[attr-defined]
    assert appointments(shop) == []


def test_speaking_between_silences_starts_the_count_again(shop: Shop, client: Client) -> None:
    call = Phone(client, shop.tenant.slug)
    call.dial()
    call.say("")
    call.say("what services do you have?")
    call.say("")
    assert_listens(call)
    assert sms.outbox == []


# --- a person ------------------------------------------------------------------------------


def test_talk_to_a_person_dials_the_business(shop: Shop, client: Client) -> None:
    with tenant_context(shop.tenant):
        BusinessProfile.objects.update_or_create(pk=1, defaults={"phone": "+12125550199"})
    call = Phone(client, shop.tenant.slug)
    call.dial()
    call.say("I want to talk to a person")
    assert call.last is not None
    assert verbs(call.last) == ["Say", "Dial", "Say", "Hangup"]
    dial = call.last.find("Dial")
    assert dial is not None and (dial.text or "").strip() == "+12125550199"
    row = call_row(shop, call)
    assert row.outcome == "transferred"  # type: ignore[attr-defined]
    assert row.conversation.outcome == "handed_off"  # type: ignore[attr-defined]


def test_talk_to_a_person_without_a_business_phone_takes_a_message(
    shop: Shop, client: Client
) -> None:
    call = Phone(client, shop.tenant.slug)
    call.dial()
    call.say("I want to talk to a person")
    assert call.last is not None
    assert verbs(call.last) == ["Say", "Say", "Record", "Say", "Hangup"]
    assert "team at Test Dental" in call.text() and "leave a message" in call.text()
    record = call.last.find("Record")
    assert record is not None
    assert record.attrib["action"] == f"{BASE}/voice/{call.slug}/turn?step=recorded"
    assert record.attrib["transcribe"] == "true"
    transcribe_url = f"{BASE}/voice/{call.slug}/status?event=transcription"
    assert record.attrib["transcribeCallback"] == transcribe_url

    recording = "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE1"
    root = twiml(post(client, f"/voice/{call.slug}/turn?step=recorded",
                      call.fields(RecordingUrl=recording, RecordingDuration="7")))
    assert verbs(root) == ["Say", "Hangup"]
    response = post(client, f"/voice/{call.slug}/status?event=transcription",
                    call.fields(TranscriptionText="Please call me back about my crown.",
                                TranscriptionStatus="completed", RecordingUrl=recording))
    assert response.status_code == 204  # type: ignore[attr-defined]
    row = call_row(shop, call)
    assert (row.outcome, row.recording_url, row.transcription) == (  # type: ignore[attr-defined]
        "message", recording, "Please call me back about my crown."
    )


# --- plan and status -----------------------------------------------------------------------


def test_a_business_without_the_phone_plan_texts_the_booking_link(
    make_shop: MakeShop, client: Client, frozen: time_machine.Traveller
) -> None:
    shop = make_shop(plan="standard")
    call = Phone(client, shop.tenant.slug, caller=JANE)
    root = call.dial()
    assert verbs(root) == ["Say", "Hangup"]
    assert "book online" in call.text() and "texted you the link" in call.text()
    assert [m.to for m in sms.outbox] == [JANE]
    assert f"/b/{shop.tenant.slug}/" in sms.outbox[0].body
    with tenant_context(shop.tenant):
        assert not Conversation.objects.exists()
    assert call_row(shop, call).outcome == "not_on_plan"  # type: ignore[attr-defined]
    # A turn (a stale Gather) gets no assistant either.
    assert verbs(call.say("book a cleaning")) == ["Say", "Hangup"]
    assert appointments(shop) == []


def test_a_suspended_business_says_so_and_hangs_up(
    make_shop: MakeShop, client: Client, frozen: time_machine.Traveller
) -> None:
    shop = make_shop()
    tenant_set_status(tenant=shop.tenant, status="suspended")
    call = Phone(client, shop.tenant.slug)
    root = call.dial()
    assert verbs(root) == ["Say", "Hangup"]
    assert "isn't taking calls" in call.text()
    assert sms.outbox == []
    with tenant_context(shop.tenant):
        assert not Conversation.objects.exists()


def test_the_status_callback_is_recorded_once(shop: Shop, client: Client) -> None:
    call = Phone(client, shop.tenant.slug)
    call.dial()
    done = call.fields(CallStatus="completed", CallDuration="42")
    first = post(client, f"/voice/{call.slug}/status", done)
    assert first.status_code == 204  # type: ignore[attr-defined]
    row = call_row(shop, call)
    with time_machine.travel("2026-03-02 12:05Z", tick=False):
        again = post(client, f"/voice/{call.slug}/status", done)
    assert again.status_code == 204  # type: ignore[attr-defined]
    same = call_row(shop, call)
    for name in ("status", "duration_seconds", "ended_at", "outcome", "pk"):
        assert getattr(same, name) == getattr(row, name), name
    assert (same.status, same.duration_seconds, same.outcome) == (  # type: ignore[attr-defined]
        "completed", 42, "abandoned"
    )
    assert same.conversation.outcome == "abandoned"  # type: ignore[attr-defined]
    from voice.models import Call

    with tenant_context(shop.tenant):
        assert Call.objects.count() == 1


def test_a_status_callback_keeps_a_booked_outcome(shop: Shop, client: Client) -> None:
    call = Phone(client, shop.tenant.slug)
    call.dial()
    call.say(BOOK_CLEANING)
    call.say("yes")
    post(client, f"/voice/{call.slug}/status", call.fields(CallStatus="completed",
                                                           CallDuration="95"))
    row = call_row(shop, call)
    assert (row.outcome, row.duration_seconds) == ("booked", 95)  # type: ignore[attr-defined]
    assert row.conversation.outcome == "booked"  # type: ignore[attr-defined]


# --- routing by the called number ----------------------------------------------------------


def test_incoming_by_number_finds_the_business(shop: Shop, client: Client) -> None:
    shop.tenant.phone_number = BUSINESS_NUMBER
    shop.tenant.save(update_fields=["phone_number"])
    call = Phone(client, shop.tenant.slug, called=BUSINESS_NUMBER)
    call.dial("/voice/incoming")
    assert_listens(call)
    assert call.text().startswith("Thank you for calling Test Dental.")
    call.say(BOOK_CLEANING)
    call.say("yes")
    assert appointments(shop) == [("Cleaning", "2026-03-03 15:00", "booked", "phone", JANE)]


def test_incoming_by_an_unknown_number_is_not_found(shop: Shop, client: Client) -> None:
    call = Phone(client, shop.tenant.slug, called="+15005550001")
    response = post(client, "/voice/incoming", call.fields())
    assert response.status_code == 404  # type: ignore[attr-defined]


# --- signatures ----------------------------------------------------------------------------


def _nothing_happened(shop: Shop) -> None:
    from voice.models import Call

    with tenant_context(shop.tenant):
        assert not Call.objects.exists()
        assert not Conversation.objects.exists()
        assert not Appointment.objects.exists()


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl", "forged"])
def test_unsigned_or_forged_webhooks_are_refused(
    shop: Shop, client: Client, signature: str
) -> None:
    call = Phone(client, shop.tenant.slug)
    for endpoint in ("incoming", "turn", "status", "sms"):
        data = call.fields(SpeechResult="yes", Body="hello", CallStatus="completed")
        response = post(client, f"/voice/{call.slug}/{endpoint}", data, signature=signature)
        assert response.status_code == 403, endpoint  # type: ignore[attr-defined]
    response = client.post(f"/voice/{call.slug}/incoming", call.fields())
    assert response.status_code == 403
    _nothing_happened(shop)
    assert sms.outbox == []


def test_a_signature_with_another_token_is_refused(shop: Shop, client: Client) -> None:
    call = Phone(client, shop.tenant.slug)
    path = f"/voice/{call.slug}/incoming"
    data = call.fields()
    response = post(client, path, data, signature=sign(path, data, token="someone-else"))
    assert response.status_code == 403  # type: ignore[attr-defined]
    _nothing_happened(shop)


def test_changed_fields_break_the_signature(shop: Shop, client: Client) -> None:
    call = Phone(client, shop.tenant.slug)
    call.dial()
    path = f"/voice/{call.slug}/turn"
    signature = sign(path, call.fields(SpeechResult="what services do you have?"))
    response = post(client, path, call.fields(SpeechResult=BOOK_CLEANING), signature=signature)
    assert response.status_code == 403  # type: ignore[attr-defined]
    with tenant_context(shop.tenant):
        assert not Message.objects.filter(role="user").exists()


def test_a_signature_replayed_to_another_business_is_refused(
    make_shop: MakeShop, client: Client, frozen: time_machine.Traveller
) -> None:
    a, b = make_shop(), make_shop()
    call = Phone(client, a.tenant.slug)
    call.dial()
    data = call.fields(SpeechResult=BOOK_CLEANING)
    response = post(client, f"/voice/{b.tenant.slug}/turn", data,
                    signed_path=f"/voice/{a.tenant.slug}/turn")
    assert response.status_code == 403  # type: ignore[attr-defined]
    _nothing_happened(b)
    with tenant_context(a.tenant):
        assert not Message.objects.filter(role="user").exists()


@override_settings(TWILIO_AUTH_TOKEN="")
def test_without_a_token_every_webhook_is_refused(shop: Shop, client: Client) -> None:
    call = Phone(client, shop.tenant.slug)
    for endpoint in ("incoming", "turn", "status", "sms"):
        path = f"/voice/{call.slug}/{endpoint}"
        data = call.fields()
        response = post(client, path, data, signature=sign(path, data, token=""))
        assert response.status_code == 403, endpoint  # type: ignore[attr-defined]
    _nothing_happened(shop)


def test_the_signature_covers_the_public_address(shop: Shop, client: Client) -> None:
    # Signed for the address the server sees (http, its own host): not the public one.
    call = Phone(client, shop.tenant.slug)
    path = f"/voice/{call.slug}/incoming"
    data = call.fields()
    response = post(client, path, data, signature=sign(path, data, base="http://testserver"))
    assert response.status_code == 403  # type: ignore[attr-defined]
    _nothing_happened(shop)


@pytest.mark.parametrize("suffix", ["", "/"])
@pytest.mark.parametrize("endpoint", ["incoming", "turn", "status", "sms"])
def test_webhook_posts_are_never_redirected(
    shop: Shop, client: Client, endpoint: str, suffix: str
) -> None:
    call = Phone(client, shop.tenant.slug)
    path = f"/voice/{call.slug}/{endpoint}{suffix}"
    response = post(client, path, call.fields(Body="hello", CallStatus="ringing"))
    assert response.status_code in (200, 204), response.status_code  # type: ignore[attr-defined]


def test_webhooks_answer_only_posts(shop: Shop, client: Client) -> None:
    response = client.get(f"/voice/{shop.tenant.slug}/incoming")
    assert response.status_code == 405


# --- isolation -----------------------------------------------------------------------------


def test_a_call_sid_of_one_business_does_not_continue_at_another(
    make_shop: MakeShop, client: Client, frozen: time_machine.Traveller
) -> None:
    a, b = make_shop(), make_shop()
    call = Phone(client, a.tenant.slug)
    call.dial()
    call.say(BOOK_CLEANING)
    with tenant_context(a.tenant):
        before = Message.objects.count()
    # Correctly signed for B's URL, carrying A's CallSid.
    root = call.say("yes", slug=b.tenant.slug)
    assert verbs(root) == ["Say", "Hangup"]
    assert "can't be continued" in " ".join(says(root))
    with tenant_context(a.tenant):
        assert Message.objects.count() == before
    assert appointments(a) == [] and appointments(b) == []
    _nothing_happened(b)


# --- the time limit ------------------------------------------------------------------------


def test_a_hung_llm_still_gets_the_caller_an_answer_in_time(shop: Shop, client: Client) -> None:
    call = Phone(client, shop.tenant.slug)
    call.dial()
    with FakeOpenAI() as fake:
        fake.hang(30)
        with override_settings(AGENT_PROVIDER="openai", OPENAI_API_KEY="sk-test",
                               OPENAI_BASE_URL=fake.base_url, VOICE_TURN_TIMEOUT_SECONDS=2.0):
            started = time.monotonic()
            call.say(BOOK_CLEANING)
            elapsed = time.monotonic() - started
        assert len(fake.requests) >= 1  # the LLM was asked, and hung
    assert elapsed < 10, elapsed
    assert_listens(call)
    assert "Cleaning" in call.text()
    with tenant_context(shop.tenant):
        reply = Message.objects.filter(role="assistant").order_by("-pk").first()
    assert reply is not None and reply.provider == "offline"
