"""Hypothesis over the chat websocket protocol (CONTRACT.md) against the real ASGI app.

Whatever a client sends, each text frame gets exactly one answer: a reply
(possibly after a typing frame) for a well-formed message, otherwise one
``bad_request`` error frame; the server never answers ``unavailable`` (its
catch-all for a failed turn) and the connection stays usable afterwards.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.test import override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from agent.consumers import MAX_FRAME_CHARS
from tests.agent.test_consumers import TIMEOUT, connected, socket
from tests.booking.conftest import (  # noqa: F401  (fixtures shared with the booking tests)
    Shop,
    frozen,
    make_shop,
    shop,
)

pytestmark = pytest.mark.django_db(transaction=True)

# The per-minute chat limits would answer rate_limited long before the fuzzing ends.
UNLIMITED = {"AGENT_CHAT_RATE_PER_CONNECTION": 10**6, "AGENT_CHAT_RATE_PER_IP": 10**6}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
message_texts = (
    st.text()
    | st.sampled_from(["hello", "book a cleaning tomorrow at 9", "yes", "cancel", "'; DROP "
                       "TABLE booking_appointment; --", "\u202eevil\u202c", "🦷🦷", "a\x00b"])
    | st.builds(lambda char, count: char * count, st.characters(), st.integers(900, 12_000))
)
frames = st.one_of(
    st.text(),  # mostly not JSON at all
    json_values.map(json.dumps),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["message", "Message", "", "hello"]) | json_values},
        optional={"text": message_texts | json_values, "extra": json_values},
    ).map(json.dumps),
    st.builds(lambda text: json.dumps({"type": "message", "text": text}), message_texts),
    st.binary(max_size=64),
    # Under the frame limit but nested deeper than the JSON decoder's recursion limit.
    st.builds(lambda depth: "[" * depth + "]" * depth, st.integers(900, 4000)),
    st.builds(lambda depth: '{"type": "message", "text": ' + "[" * depth + "]" * depth + "}",
              st.integers(900, 4000)),
)


def expects_reply(frame: str | bytes) -> bool:
    """Whether CONTRACT.md's protocol calls this frame a message to answer."""
    if isinstance(frame, bytes) or len(frame) > MAX_FRAME_CHARS:
        return False
    try:
        data = json.loads(frame)
    except (ValueError, RecursionError):
        return False
    if not isinstance(data, dict) or data.get("type") != "message":
        return False
    text = data.get("text")
    return (isinstance(text, str) and bool(text.strip())
            and len(text.strip()) <= settings.AGENT_MAX_MESSAGE_CHARS)


async def answer_to(communicator: Any, frame: str | bytes) -> dict[str, Any]:
    # send_input, not send_to: an empty frame is legal on the wire but send_to refuses it.
    key = "bytes" if isinstance(frame, bytes) else "text"
    await communicator.send_input({"type": "websocket.receive", key: frame})
    first: dict[str, Any] = await communicator.receive_json_from(timeout=TIMEOUT)
    if first.get("type") != "typing":
        return first
    answer: dict[str, Any] = await communicator.receive_json_from(timeout=TIMEOUT)
    return answer


async def exchange(slug: str, sent: list[str | bytes]) -> None:
    communicator = socket(slug)
    welcome = await connected(communicator)
    try:
        for frame in [*sent, json.dumps({"type": "message", "text": "hello"})]:
            answer = await answer_to(communicator, frame)
            if expects_reply(frame):
                assert answer["type"] == "reply", (frame, answer)
                assert answer["conversation"] == welcome["conversation"]
                assert isinstance(answer["text"], str) and answer["text"]
            else:
                assert answer["type"] == "error", (frame, answer)
                assert answer["code"] == "bad_request", (frame, answer)
                assert answer["text"]
        # Exactly one answer per frame: nothing is left over.
        assert await communicator.receive_nothing(timeout=0.05)
    finally:
        await communicator.disconnect()


@hypothesis_settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow, HealthCheck.large_base_example])
@given(sent=st.lists(frames, min_size=1, max_size=4))
def test_every_frame_gets_exactly_one_answer_and_the_connection_stays_usable(
    shop: Shop, sent: list[str | bytes]  # noqa: F811
) -> None:
    with override_settings(**UNLIMITED):
        async_to_sync(exchange)(shop.tenant.slug, sent)
