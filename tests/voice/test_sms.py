"""The assistant over text messages: ``/voice/<slug>/sms``, signed like Twilio signs it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import time_machine
from django.test import Client

from agent.models import Conversation
from booking.models import Appointment
from booking.services import appointment_book
from tenants.context import tenant_context
from tests.booking.conftest import MakeShop, Shop, ada, local
from tests.voice.conftest import ADA, BUSINESS_NUMBER, JANE, post, twiml


def text(client: Client, slug: str, body: str, *, sender: str = JANE,
         path: str | None = None) -> ET.Element:
    data = {"MessageSid": "SM" + "1" * 32, "AccountSid": "AC" + "0" * 32, "From": sender,
            "To": BUSINESS_NUMBER, "Body": body, "NumMedia": "0"}
    return twiml(post(client, path or f"/voice/{slug}/sms", data))


def replies(root: ET.Element) -> list[str]:
    assert all(child.tag == "Message" for child in root)
    return [element.text or "" for element in root.iter("Message")]


def test_a_text_conversation_books(shop: Shop, client: Client) -> None:
    slug = shop.tenant.slug
    [reply] = replies(text(client, slug, "Hi, I'm Jane Doe, can I get a cleaning tomorrow at 3?"))
    assert "Cleaning" in reply and "3:00 PM" in reply
    [reply] = replies(text(client, slug, "yes"))
    with tenant_context(shop.tenant):
        appointment = Appointment.objects.select_related("customer").get()
        conversation = Conversation.objects.get()
    assert appointment.reference in reply
    assert (appointment.channel, appointment.customer.phone) == ("sms", JANE)
    assert (conversation.channel, conversation.external_key, conversation.customer_phone) == (
        "sms", JANE, JANE
    )
    assert conversation.outcome == "booked"


def test_r_after_a_reminder_asks_about_rescheduling(shop: Shop, client: Client) -> None:
    with tenant_context(shop.tenant):
        appointment_book(service_id=shop.services["Cleaning"], start=local(2026, 3, 4, 9, 0),
                         customer=ada(), channel="web")
    [reply] = replies(text(client, shop.tenant.slug, "R", sender=ADA))
    assert "move" in reply.lower() or "reschedule" in reply.lower()
    with tenant_context(shop.tenant):
        conversation = Conversation.objects.get()
        asked = list(conversation.messages.filter(role="user").values_list("text", flat=True))
    # The assistant was asked to reschedule, by the number the reminder went to.
    assert asked == ["I'd like to reschedule my appointment."]
    assert (conversation.channel, conversation.customer_phone) == ("sms", ADA)


def test_stop_gets_no_reply_and_reaches_no_assistant(shop: Shop, client: Client) -> None:
    assert replies(text(client, shop.tenant.slug, "STOP")) == []
    with tenant_context(shop.tenant):
        assert not Conversation.objects.exists()


def test_texts_to_the_business_number_are_routed_by_it(shop: Shop, client: Client) -> None:
    shop.tenant.phone_number = BUSINESS_NUMBER
    shop.tenant.save(update_fields=["phone_number"])
    [reply] = replies(text(client, "", "what services do you have?", path="/voice/sms"))
    assert "Cleaning" in reply


def test_without_the_phone_plan_a_text_gets_the_booking_link(
    make_shop: MakeShop, client: Client, frozen: time_machine.Traveller
) -> None:
    shop = make_shop(plan="standard")
    [reply] = replies(text(client, shop.tenant.slug, "book a cleaning"))
    assert reply.endswith(f"/b/{shop.tenant.slug}/")
    with tenant_context(shop.tenant):
        assert not Conversation.objects.exists()
