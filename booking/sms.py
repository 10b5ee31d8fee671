"""Text messages: a tiny backend interface, chosen by ``settings.SMS_BACKEND``.

The same shape as Django's email backends: ``ConsoleBackend`` prints messages
(development), ``LocmemBackend`` keeps them in ``booking.sms.outbox`` (tests),
``TwilioBackend`` sends them through Twilio's official client. Callers use
``send_sms``; a failure raises ``SmsError`` (or the provider's own exception).
"""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass
from typing import TextIO

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

# Twilio answers in well under a second; a stuck connection must not hold a
# worker (or, through the phone flow, a webhook that Twilio gives 15 s).
TWILIO_TIMEOUT_SECONDS = 10.0


class SmsError(Exception):
    """The message could not be handed to the provider."""


@dataclass(frozen=True)
class SmsMessage:
    to: str
    body: str
    sender: str = ""


class BaseBackend:
    def send(self, message: SmsMessage) -> str:
        """Hand ``message`` to the provider; returns the provider's message id."""
        raise NotImplementedError


class ConsoleBackend(BaseBackend):
    """Writes each message to stdout, like Django's console email backend (development)."""

    _lock = threading.Lock()

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, message: SmsMessage) -> str:
        stream = self.stream or sys.stdout
        with self._lock:
            stream.write(f"SMS to: {message.to}\n")
            if message.sender:
                stream.write(f"From: {message.sender}\n")
            stream.write(f"\n{message.body}\n{'-' * 79}\n")
            stream.flush()
        return "console"


# Messages "sent" by LocmemBackend, in order; tests read and clear it.
outbox: list[SmsMessage] = []


class LocmemBackend(BaseBackend):
    def send(self, message: SmsMessage) -> str:
        outbox.append(message)
        return f"locmem-{len(outbox)}"


class TwilioBackend(BaseBackend):
    """Twilio's Messages API with a bounded HTTP timeout.

    ``api_base_url`` points the client at another host speaking Twilio's
    protocol (a loopback fake in tests); production leaves it unset.
    """

    def __init__(
        self,
        *,
        account_sid: str | None = None,
        auth_token: str | None = None,
        from_number: str | None = None,
        api_base_url: str | None = None,
        timeout: float = TWILIO_TIMEOUT_SECONDS,
    ) -> None:
        self.account_sid = account_sid or settings.TWILIO_ACCOUNT_SID
        self.auth_token = auth_token or settings.TWILIO_AUTH_TOKEN
        self.from_number = from_number or settings.TWILIO_FROM_NUMBER
        self.api_base_url = api_base_url
        self.timeout = timeout
        if not (self.account_sid and self.auth_token and self.from_number):
            raise SmsError(
                "TwilioBackend needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER."
            )

    def _client(self) -> object:
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        # Twilio's client logs every request at INFO; its own logger would
        # print query strings, so it gets one that only speaks up on problems.
        quiet = logging.getLogger("booking.sms.twilio_http")
        quiet.setLevel(logging.WARNING)
        http_client = TwilioHttpClient(timeout=self.timeout, logger=quiet, max_retries=0)
        client = Client(self.account_sid, self.auth_token, http_client=http_client)
        if self.api_base_url:
            client.api.base_url = self.api_base_url
        return client

    def send(self, message: SmsMessage) -> str:
        client = self._client()
        created = client.messages.create(  # type: ignore[attr-defined]
            to=message.to, from_=message.sender or self.from_number, body=message.body
        )
        return str(created.sid or "")


def get_backend(path: str | None = None) -> BaseBackend:
    backend_class = import_string(path or settings.SMS_BACKEND)
    backend: BaseBackend = backend_class()
    return backend


def send_sms(*, to: str, body: str, sender: str = "") -> str:
    """Send one text message through the configured backend; returns the provider's id."""
    message_id = get_backend().send(SmsMessage(to=to, body=body, sender=sender))
    # Never the number or the text: both are the customer's.
    logger.debug("sms handed to %s", settings.SMS_BACKEND)
    return message_id
