"""Call a business's phone flow from a terminal, the way Twilio would.

Talks to a RUNNING server: posts signed, Twilio-shaped form requests (the
incoming call, then one turn per stdin line as the recognised speech; an empty
line is silence), prints what the caller would hear (each <Say>, one a line)
and stops when the call ends (hang-up, transfer, message) or on end of input.

    python manage.py simulate_call demo-dental --base-url http://127.0.0.1:8000
"""

from __future__ import annotations

import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from twilio.request_validator import RequestValidator

HTTP_TIMEOUT_SECONDS = 20.0
# A Redirect loop (the flow sending the caller round without asking anything) ends the call.
MAX_REDIRECTS = 5


class Command(BaseCommand):
    help = "Simulate a phone call to a business (signed requests to a running server)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--base-url", default="",
                            help="Where the server listens (default: PUBLIC_BASE_URL).")
        parser.add_argument("--public-url", default="",
                            help="The address the server signs against, when it differs from "
                                 "--base-url (default: --base-url).")
        parser.add_argument("--from", dest="caller", default="+12125550123",
                            help="The caller ID (E.164).")
        parser.add_argument("--to", dest="called", default="",
                            help="The called number (the business's Twilio number).")

    def handle(self, *args: Any, **options: Any) -> None:
        token = settings.TWILIO_AUTH_TOKEN
        if not token:
            raise CommandError("TWILIO_AUTH_TOKEN is not set: the server refuses unsigned calls.")
        self.validator = RequestValidator(token)
        self.base_url = (options["base_url"] or settings.PUBLIC_BASE_URL).rstrip("/")
        self.public_url = (options["public_url"] or self.base_url).rstrip("/")
        for address in (self.base_url, self.public_url):
            if urllib.parse.urlsplit(address).scheme not in ("http", "https"):
                raise CommandError(f"Not an http(s) address: {address!r}")
        self.fields = {
            "CallSid": "CA" + secrets.token_hex(16),
            "AccountSid": settings.TWILIO_ACCOUNT_SID or "AC" + "0" * 32,
            "From": options["caller"],
            "To": options["called"],
            "Direction": "inbound",
            "CallStatus": "ringing",
        }
        started = time.monotonic()
        root = self._post(f"{self.public_url}/voice/{options['slug']}/incoming", {})
        self.fields["CallStatus"] = "in-progress"
        redirects = 0
        status_url = f"{self.public_url}/voice/{options['slug']}/status"
        while root is not None:
            action, method, ended = self._play(root)
            if ended or action is None:
                break
            if method == "redirect":
                redirects += 1
                if redirects > MAX_REDIRECTS:
                    break
                root = self._post(action, {})
                continue
            redirects = 0
            line = sys.stdin.readline()
            if not line:
                self._note("caller hangs up")
                break
            speech = line.strip()
            root = self._post(action, {"SpeechResult": speech, "Confidence": "0.9"}
                              if speech else {})
        self.fields["CallStatus"] = "completed"
        self._post(status_url, {"CallDuration": str(int(time.monotonic() - started))},
                   expect_twiml=False)

    # --- TwiML ---

    def _play(self, root: ET.Element) -> tuple[str | None, str, bool]:
        """Print what the caller hears; returns (next URL, "gather"/"redirect", call ended)."""
        for verb in root:
            if verb.tag == "Say":
                self._hear(verb.text or "")
            elif verb.tag == "Gather":
                for inner in verb.iter("Say"):
                    self._hear(inner.text or "")
                return verb.attrib.get("action"), "gather", False
            elif verb.tag == "Redirect":
                return (verb.text or "").strip(), "redirect", False
            elif verb.tag == "Dial":
                self._note(f"transferred to {(verb.text or '').strip()}")
                return None, "", True
            elif verb.tag == "Record":
                self._note("recording a message")
                return None, "", True
            elif verb.tag == "Hangup":
                self._note("hangs up")
                return None, "", True
        return None, "", True

    def _hear(self, text: str) -> None:
        self.stdout.write(" ".join(text.split()))
        self.stdout.flush()

    def _note(self, text: str) -> None:
        self.stdout.write(f"[{text}]")
        self.stdout.flush()

    # --- HTTP ---

    def _post(self, url: str, extra: dict[str, str], *,
              expect_twiml: bool = True) -> ET.Element | None:
        if not url.startswith(self.public_url + "/"):
            raise CommandError(f"The server sent the call to another site: {url}")
        data = {**self.fields, **extra}
        # Signed over the public address, posted to where the server listens.
        signature = self.validator.compute_signature(url, data)
        target = self.base_url + url[len(self.public_url):]
        # The scheme was checked in handle(): only http(s) is ever opened.
        request = urllib.request.Request(  # noqa: S310
            target, data=urllib.parse.urlencode(data).encode(), method="POST",
            headers={"X-Twilio-Signature": signature,
                     "Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, timeout=HTTP_TIMEOUT_SECONDS
            ) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise CommandError(f"The server answered {exc.code} to {target}.") from None
        except (urllib.error.URLError, TimeoutError) as exc:
            raise CommandError(f"Could not reach {target}: {exc}") from None
        if not expect_twiml:
            return None
        try:
            # The operator's own server, not an outside party, wrote this document.
            return ET.fromstring(body)  # noqa: S314
        except ET.ParseError:
            raise CommandError(f"{target} did not answer with TwiML.") from None
