"""`manage.py simulate_call` against a live server (daphne subprocess, production settings).

The server gets its own data directory, a Twilio token and PUBLIC_BASE_URL set
to where it really listens, so the command's signed requests are checked
exactly as Twilio's would be.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.booking.conftest import base_setup
from tests.live_server import REPO, LiveServer, live_server

TOKEN = "simulate-call-token"
ALL_WEEK = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat",
                                                  "sun")}


@pytest.fixture(scope="module")
def voice_server() -> Iterator[LiveServer]:
    with live_server("ss-voice-", TWILIO_AUTH_TOKEN=TOKEN) as server:
        yield server


def simulate(server: LiveServer, slug: str, lines: list[str], *args: str
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "simulate_call", slug, "--base-url", server.url, *args],
        cwd=REPO, env=server.env, input="".join(f"{line}\n" for line in lines),
        capture_output=True, text=True, timeout=120,
    )


def test_a_simulated_call_books_on_the_live_server(voice_server: LiveServer) -> None:
    slug = "sim-dental"
    voice_server.manage("create_tenant", "--slug", slug, "--name", "Sim Dental",
                        "--timezone", "America/New_York", "--owner-email", "sim@example.com",
                        "--plan", "premium")
    setup = base_setup()
    setup["name"] = "Sim Dental"
    setup["closures"] = []
    for member in setup["staff"]:
        member["hours"] = ALL_WEEK
    config = voice_server.var_dir / "sim.json"
    config.write_text(json.dumps(setup))
    voice_server.manage("tenant_config", slug, "--import", str(config))

    done = simulate(voice_server, slug, [
        "Hi, this is Jane Doe, can I book a cleaning tomorrow at 3?", "yes", "no thanks, bye",
    ], "--from", "+12125550142")
    assert done.returncode == 0, done.stderr + voice_server.log()
    heard = done.stdout.splitlines()
    assert heard[0].startswith("Thank you for calling Sim Dental.")
    assert "Cleaning" in heard[1] and "3:00 PM" in heard[1]
    assert heard[2].startswith("You're booked")
    assert heard[-1] == "[hangs up]"

    report = json.loads(voice_server.manage("tenant_report", slug, "--json").stdout)
    assert [(a["service"], a["channel"], a["customer_phone"], a["status"])
            for a in report["appointments"]] == [("Cleaning", "phone", "+12125550142", "booked")]


    # The same call signed with another token: refused, nothing more booked.
    env = dict(voice_server.env, TWILIO_AUTH_TOKEN="not-the-servers-token")
    refused = subprocess.run(
        [sys.executable, "manage.py", "simulate_call", slug, "--base-url", voice_server.url],
        cwd=REPO, env=env, input="yes\n", capture_output=True, text=True, timeout=120,
    )
    assert refused.returncode != 0 and "403" in refused.stderr
    again = json.loads(voice_server.manage("tenant_report", slug, "--json").stdout)
    assert len(again["appointments"]) == 1
