"""The chat websocket against the real ASGI application (origin check and tenant middleware)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import time_machine
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import OperationalError
from django.test import override_settings

from agent import consumers
from agent.engine import conversation_start
from agent.models import Conversation
from billing.plans import PLANS
from booking.models import Appointment
from smartscheduler.asgi import application
from tenants.context import tenant_context
from tenants.models import Tenant
from tests.booking.conftest import MakeShop, Shop

pytestmark = pytest.mark.django_db(transaction=True)

T = TypeVar("T")
TIMEOUT = 10


def socket(slug: str, *, conversation: str = "", origin: bytes = b"http://testserver",
           client: str = "203.0.113.7") -> WebsocketCommunicator:
    path = f"/ws/chat/{slug}/" + (f"?conversation={conversation}" if conversation else "")
    communicator = WebsocketCommunicator(application, path, headers=[(b"origin", origin)])
    communicator.scope["client"] = (client, 50000)
    return communicator


async def in_tenant(tenant: Tenant, func: Callable[[], T]) -> T:
    def run() -> T:
        with tenant_context(tenant):
            return func()

    return await database_sync_to_async(run)()


async def connected(communicator: WebsocketCommunicator) -> dict[str, Any]:
    ok, _ = await communicator.connect(timeout=TIMEOUT)
    assert ok
    welcome: dict[str, Any] = await communicator.receive_json_from(timeout=TIMEOUT)
    assert welcome["type"] == "welcome"
    return welcome


async def ask(communicator: WebsocketCommunicator, text: str) -> dict[str, Any]:
    """Send a message; return the reply after checking the typing frame before it."""
    await communicator.send_json_to({"type": "message", "text": text})
    first = await communicator.receive_json_from(timeout=TIMEOUT)
    if first["type"] != "typing":
        return first
    reply: dict[str, Any] = await communicator.receive_json_from(timeout=TIMEOUT)
    return reply


async def test_welcome_then_exactly_one_reply_per_message(shop: Shop) -> None:
    communicator = socket(shop.tenant.slug)
    welcome = await connected(communicator)
    assert welcome["text"].startswith("Hi! I'm the booking assistant of Test Dental")
    await communicator.send_json_to({"type": "message", "text": "what services do you offer?"})
    assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "typing"}
    reply = await communicator.receive_json_from(timeout=TIMEOUT)
    assert reply["type"] == "reply"
    assert reply["conversation"] == welcome["conversation"]
    assert "Cleaning" in reply["text"]
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.disconnect()

    stored = await in_tenant(shop.tenant, lambda: Conversation.objects.get(
        public_id=welcome["conversation"]))
    assert stored.channel == "chat"


async def test_a_customer_books_over_the_websocket(shop: Shop) -> None:
    communicator = socket(shop.tenant.slug)
    await connected(communicator)
    for text in ("Book a cleaning Tuesday at 9am", "Ada Lovelace", "212 555 0100"):
        assert (await ask(communicator, text))["type"] == "reply"
    done = await ask(communicator, "yes")
    await communicator.disconnect()
    appointment = await in_tenant(shop.tenant, lambda: Appointment.objects.get())
    assert appointment.reference in done["text"]
    assert appointment.channel == "chat"


async def test_a_conversation_resumes_by_its_id(make_shop: MakeShop, shop: Shop) -> None:
    first = socket(shop.tenant.slug)
    conversation_id = (await connected(first))["conversation"]
    await ask(first, "hello")
    await first.disconnect()

    again = socket(shop.tenant.slug, conversation=conversation_id)
    assert (await connected(again))["conversation"] == conversation_id
    await again.disconnect()

    phone_call = await in_tenant(shop.tenant, lambda: conversation_start(channel="phone"))
    other = await database_sync_to_async(make_shop)()
    elsewhere = await in_tenant(other.tenant, lambda: conversation_start(channel="chat"))
    for unknown in ("no-such-conversation", phone_call.public_id, elsewhere.public_id):
        fresh = socket(shop.tenant.slug, conversation=unknown)
        assert (await connected(fresh))["conversation"] not in (unknown, conversation_id)
        await fresh.disconnect()


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        '{"type": "hello", "text": "hi"}',
        '{"type": "message"}',
        '{"type": "message", "text": 42}',
        '{"type": "message", "text": "   "}',
        '{"type": "message", "text": "' + "x" * 1001 + '"}',
        "x" * 20_000,
    ],
)
async def test_bad_frames_get_bad_request_and_the_connection_stays_usable(
    shop: Shop, frame: str
) -> None:
    communicator = socket(shop.tenant.slug)
    await connected(communicator)
    await communicator.send_to(text_data=frame)
    error = await communicator.receive_json_from(timeout=TIMEOUT)
    assert error["type"] == "error"
    assert error["code"] == "bad_request"
    assert error["text"]
    assert (await ask(communicator, "hello"))["type"] == "reply"
    await communicator.disconnect()


async def test_binary_frames_are_refused(shop: Shop) -> None:
    communicator = socket(shop.tenant.slug)
    await connected(communicator)
    await communicator.send_to(bytes_data=b"\x00\x01")
    assert (await communicator.receive_json_from(timeout=TIMEOUT))["code"] == "bad_request"
    await communicator.disconnect()


async def test_too_many_messages_are_rate_limited_until_the_window_passes(
    shop: Shop, frozen: time_machine.Traveller
) -> None:
    communicator = socket(shop.tenant.slug)
    await connected(communicator)
    with override_settings(AGENT_CHAT_RATE_PER_CONNECTION=2):
        assert (await ask(communicator, "hi"))["type"] == "reply"
        assert (await ask(communicator, "hi"))["type"] == "reply"
        limited = await ask(communicator, "hi")
        assert (limited["type"], limited["code"]) == ("error", "rate_limited")
        frozen.shift(61)
        assert (await ask(communicator, "hi"))["type"] == "reply"
    await communicator.disconnect()


async def test_the_limit_per_address_spans_connections_but_not_businesses(
    make_shop: MakeShop, shop: Shop
) -> None:
    other = await database_sync_to_async(make_shop)()
    with override_settings(AGENT_CHAT_RATE_PER_IP=2, AGENT_CHAT_RATE_PER_CONNECTION=100):
        one, two = socket(shop.tenant.slug), socket(shop.tenant.slug)
        elsewhere = socket(other.tenant.slug)
        another_address = socket(shop.tenant.slug, client="198.51.100.9")
        for communicator in (one, two, elsewhere, another_address):
            await connected(communicator)
        assert (await ask(one, "hi"))["type"] == "reply"
        assert (await ask(two, "hi"))["type"] == "reply"
        assert (await ask(two, "hi"))["code"] == "rate_limited"
        assert (await ask(elsewhere, "hi"))["type"] == "reply"
        assert (await ask(another_address, "hi"))["type"] == "reply"
        for communicator in (one, two, elsewhere, another_address):
            await communicator.disconnect()


async def test_a_failed_turn_is_an_error_frame_and_the_next_one_works(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = consumers.conversation_turn
    calls = []

    def flaky(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("database is locked")
        return real(**kwargs)

    monkeypatch.setattr(consumers, "conversation_turn", flaky)
    communicator = socket(shop.tenant.slug)
    await connected(communicator)
    failed = await ask(communicator, "hello")
    assert (failed["type"], failed["code"]) == ("error", "unavailable")
    assert (await ask(communicator, "hello"))["type"] == "reply"
    await communicator.disconnect()


async def test_an_unknown_business_is_refused(db: None) -> None:
    communicator = socket("no-such-business")
    ok, code = await communicator.connect(timeout=TIMEOUT)
    assert not ok
    assert code == 4404


async def test_a_foreign_origin_is_refused(shop: Shop) -> None:
    communicator = socket(shop.tenant.slug, origin=b"https://evil.example")
    ok, _ = await communicator.connect(timeout=TIMEOUT)
    assert not ok


async def _assert_unavailable(slug: str) -> None:
    communicator = socket(slug)
    ok, _ = await communicator.connect(timeout=TIMEOUT)
    assert ok
    error = await communicator.receive_json_from(timeout=TIMEOUT)
    assert (error["type"], error["code"]) == ("error", "unavailable")
    assert "not offering chat" in error["text"]
    closed = await communicator.receive_output(timeout=TIMEOUT)
    assert closed == {"type": "websocket.close", "code": consumers.UNAVAILABLE_CLOSE_CODE}


async def test_a_suspended_business_says_unavailable_and_closes(shop: Shop) -> None:
    await database_sync_to_async(
        Tenant.objects.filter(pk=shop.tenant.pk).update
    )(status=Tenant.Status.SUSPENDED)
    await _assert_unavailable(shop.tenant.slug)


async def test_a_plan_without_chat_says_unavailable_and_closes(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = shop.tenant.plan
    monkeypatch.setitem(PLANS, plan, dataclasses.replace(PLANS[plan], features=frozenset()))
    await _assert_unavailable(shop.tenant.slug)
    conversations = await in_tenant(shop.tenant, lambda: Conversation.objects.count())
    assert conversations == 0


async def test_reconnect_storms_from_one_address_are_limited(shop: Shop) -> None:
    with override_settings(AGENT_CHAT_RATE_PER_IP=1):
        first = socket(shop.tenant.slug)
        await connected(first)
        second = socket(shop.tenant.slug)
        ok, _ = await second.connect(timeout=TIMEOUT)
        assert ok
        assert (await second.receive_json_from(timeout=TIMEOUT))["code"] == "rate_limited"
        assert (await second.receive_output(timeout=TIMEOUT))["code"] == 4429
        await first.disconnect()
    count = await in_tenant(shop.tenant, lambda: Conversation.objects.count())
    assert count == 1
