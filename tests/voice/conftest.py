from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from django.test import Client
from twilio.request_validator import RequestValidator

from booking import sms
from tests.booking.conftest import (  # noqa: F401  (fixtures shared with the booking tests)
    NOW,
    MakeShop,
    Shop,
    base_setup,
    frozen,
    local,
    make_shop,
    shop,
)

TOKEN = "test-twilio-auth-token"
# Deliberately not the test client's host: signatures cover the public address.
BASE = "https://voice.example.com"
BUSINESS_NUMBER = "+15005550006"
JANE = "+12125550142"
ADA = "+12125550100"
_sids = itertools.count(1)


@pytest.fixture(autouse=True)
def twilio_settings(settings: pytest.FixtureRequest) -> Iterator[None]:
    settings.TWILIO_AUTH_TOKEN = TOKEN  # type: ignore[attr-defined]
    settings.PUBLIC_BASE_URL = BASE  # type: ignore[attr-defined]
    settings.SMS_BACKEND = "booking.sms.LocmemBackend"  # type: ignore[attr-defined]
    settings.AGENT_PROVIDER = "offline"  # type: ignore[attr-defined]
    sms.outbox.clear()
    yield
    sms.outbox.clear()


def sign(path: str, data: dict[str, str], *, token: str = TOKEN, base: str = BASE) -> str:
    return str(RequestValidator(token).compute_signature(base + path, data))


def post(client: Client, path: str, data: dict[str, str], *, signature: str | None = None,
         signed_path: str | None = None) -> object:
    """POST like Twilio: form fields, signed over BASE + path unless told otherwise."""
    if signature is None:
        signature = sign(signed_path or path, data)
    return client.post(path, data, HTTP_X_TWILIO_SIGNATURE=signature)


def twiml(response: object) -> ET.Element:
    assert response.status_code == 200, response.status_code  # type: ignore[attr-defined]
    assert response["Content-Type"].startswith("text/xml")  # type: ignore[index]
    root = ET.fromstring(response.content)  # type: ignore[attr-defined]  # noqa: S314
    assert root.tag == "Response"
    return root


def says(root: ET.Element) -> list[str]:
    return [element.text or "" for element in root.iter("Say")]


def verbs(root: ET.Element) -> list[str]:
    return [child.tag for child in root]


@dataclass
class Phone:
    """One phone call to a business, made like Twilio makes it."""

    client: Client
    slug: str
    caller: str = JANE
    called: str = BUSINESS_NUMBER
    call_sid: str = field(default_factory=lambda: f"CA{next(_sids):032d}")
    last: ET.Element | None = None

    def fields(self, **extra: str) -> dict[str, str]:
        return {"CallSid": self.call_sid, "AccountSid": "AC" + "0" * 32, "From": self.caller,
                "To": self.called, "CallStatus": "in-progress", "Direction": "inbound",
                **extra}

    def dial(self, path: str | None = None) -> ET.Element:
        self.last = twiml(post(self.client, path or f"/voice/{self.slug}/incoming",
                               self.fields(CallStatus="ringing")))
        return self.last

    def say(self, speech: str, *, slug: str | None = None) -> ET.Element:
        extra = {"SpeechResult": speech, "Confidence": "0.92"} if speech else {}
        self.last = twiml(post(self.client, f"/voice/{slug or self.slug}/turn",
                               self.fields(**extra)))
        return self.last

    def text(self) -> str:
        assert self.last is not None
        return " ".join(says(self.last))

    def hung_up(self) -> bool:
        assert self.last is not None
        return verbs(self.last)[-1] == "Hangup"
