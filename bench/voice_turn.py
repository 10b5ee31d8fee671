"""One phone turn: a signed Twilio webhook answered with TwiML by the offline assistant.

In-process (Django's test client: middleware, signature check, tenant context,
the conversation engine with its stores, the booking tools, TwiML), one
process, no network. Calls of eight turns each (asking about services, hours,
prices and free times, which run the availability engine); every request is
signed over PUBLIC_BASE_URL like Twilio's.

Run: ``.venv/bin/python -m bench.voice_turn [--calls 60]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from bench.common import machine, say, start

TOKEN = "bench-voice-token"
BASE = "https://bench.example.com"
GOAL_P99_MS = 100.0
SPEECH = (
    "hi, what services do you have?",
    "what are your opening hours?",
    "how much is a cleaning?",
    "do you have a cleaning on thursday morning?",
    "what about friday afternoon?",
    "how long does a checkup take?",
    "where are you located?",
    "thanks",
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=60)
    args = parser.parse_args()
    os.environ.update(TWILIO_AUTH_TOKEN=TOKEN, PUBLIC_BASE_URL=BASE, AGENT_PROVIDER="offline")
    start("voice")
    from django.conf import settings
    from django.test import Client
    from twilio.request_validator import RequestValidator

    from booking.config import config_import
    from tenants.context import tenant_context
    from tenants.services import tenant_create
    from tests.booking.conftest import base_setup

    settings.SMS_BACKEND = "booking.sms.LocmemBackend"
    tenant = tenant_create(slug="bench-voice", name="Bench Dental", timezone="America/New_York",
                           owner_email="owner@example.com", plan="premium")
    with tenant_context(tenant):
        config_import(base_setup())
    validator = RequestValidator(TOKEN)
    client = Client()

    def post(path: str, data: dict[str, str]) -> float:
        signature = validator.compute_signature(BASE + path, data)
        began = time.perf_counter()
        response = client.post(path, data, HTTP_X_TWILIO_SIGNATURE=signature)
        elapsed = (time.perf_counter() - began) * 1000
        assert response.status_code == 200, response.status_code
        assert b"<Say" in response.content
        return elapsed

    say(f"machine: {machine()}")
    incoming_ms: list[float] = []
    turn_ms: list[float] = []
    for n in range(args.calls + 2):
        fields = {"CallSid": f"CA{n:032d}", "From": f"+1212555{n % 10000:04d}",
                  "To": "+15005550006", "AccountSid": "AC" + "0" * 32}
        first = post("/voice/bench-voice/incoming", fields)
        turns = [post("/voice/bench-voice/turn", {**fields, "SpeechResult": speech})
                 for speech in SPEECH]
        if n >= 2:  # two warm-up calls
            incoming_ms.append(first)
            turn_ms.extend(turns)

    def line(label: str, values: list[float]) -> str:
        ordered = sorted(values)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return (f"{label}: median {statistics.median(values):.1f} ms, "
                f"p90 {ordered[int(len(ordered) * 0.9)]:.1f}, p99 {p99:.1f}, "
                f"max {ordered[-1]:.1f} (n={len(values)})")

    say(line("POST /voice/<slug>/incoming", incoming_ms))
    say(line("POST /voice/<slug>/turn (offline assistant)", turn_ms))
    ordered = sorted(turn_ms)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    say(f"turn p99 {p99:.1f} ms (goal <= {GOAL_P99_MS:.0f} ms): "
        f"{'met' if p99 <= GOAL_P99_MS else 'NOT met'}")


if __name__ == "__main__":
    main()
