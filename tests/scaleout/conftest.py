"""Fixtures for the scale-out tests: one topology (two daphne processes, an RQ
worker, PostgreSQL, Redis) for the module, and helpers to provision businesses
and read their data back through management commands."""

from __future__ import annotations

import json
import secrets
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from tests.scaleout.topology import Topology, scaleout_topology

# The phone test signs its webhooks with this; both processes check them with it.
TWILIO_TOKEN = "scaleout-twilio-token"
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def business_setup(name: str) -> dict[str, Any]:
    """Open every day 08:00-20:00 with two services and two staff members."""
    hours = {day: [["08:00", "20:00"]] for day in WEEK}
    return {
        "name": name,
        "timezone": "America/New_York",
        "policy": {"slot_step_minutes": 30, "min_notice_minutes": 60, "max_days_ahead": 60,
                   "cancellation_notice_minutes": 120, "reminder_offsets_minutes": [1440],
                   "waitlist_hold_minutes": 15},
        "services": [
            {"name": "Cleaning", "duration_minutes": 60, "price": "120.00",
             "buffer_before_minutes": 0, "buffer_after_minutes": 0, "description": ""},
            {"name": "Checkup", "duration_minutes": 30, "price": "80.00",
             "buffer_before_minutes": 0, "buffer_after_minutes": 0, "description": ""},
        ],
        "staff": [{"name": "Ana", "services": ["Cleaning", "Checkup"], "hours": hours},
                  {"name": "Ben", "services": ["Cleaning", "Checkup"], "hours": hours}],
        "closures": [],
    }


def provision(topology: Topology, *labels: str) -> dict[str, str]:
    """Premium businesses with unique slugs, made in one process; label -> slug."""
    slugs = {label: f"{label}-{secrets.token_hex(3)}" for label in labels}
    calls = []
    for label, slug in slugs.items():
        setup = topology.var_dir / f"{slug}.json"
        setup.write_text(json.dumps(business_setup(label.title())))
        calls.append(["create_tenant", "--slug", slug, "--name", label.title(),
                      "--timezone", "America/New_York", "--owner-email",
                      f"owner@{slug}.invalid", "--plan", "premium"])
        calls.append(["tenant_config", slug, "--import", str(setup)])
    # One interpreter for all: starting Django costs seconds on a busy machine.
    script = ("from django.core.management import call_command\n"
              f"for call in {calls!r}:\n    call_command(*call)\n")
    topology.manage("shell", "-c", script)
    return slugs


def report(topology: Topology, slug: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(topology.manage("tenant_report", slug, "--json").stdout)
    return data


@pytest.fixture(scope="package", params=["sqlite-tenants", "postgres-tenants"])
def topology(request: pytest.FixtureRequest) -> Iterator[Topology]:
    """Every test runs on both: businesses in SQLite files on a shared disk, and
    businesses in PostgreSQL databases of their own."""
    # Both processes and the worker read the same limits; a low per-address chat
    # limit lets the shared-limit test reach it in a few messages.
    with scaleout_topology(AGENT_CHAT_RATE_PER_IP="8", TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
                           postgres_tenants=request.param == "postgres-tenants") as running:
        yield running


@pytest.fixture(scope="package")
def businesses(topology: Topology) -> dict[str, str]:
    """One business per test (the rate-limit test may need a second)."""
    return provision(topology, "chatter", "racers", "limited", "limited-again", "queued",
                     "reminded", "caller")


# How long the worker may take to run work that is due: an upper bound, not a delay.
WORKER_DEADLINE = 60.0
WAIT_FOR = f"""
import time
def wait_for(read, done, deadline={WORKER_DEADLINE}):
    # Another process (the worker) does the work; read until it is done or time is up.
    give_up = time.monotonic() + deadline
    value = read()
    while not done(value) and time.monotonic() < give_up:
        time.sleep(0.2)
        value = read()
    return value
"""


def in_tenant(topology: Topology, slug: str, body: str) -> Any:
    """Run ``body`` (Python that sets ``result``) in the business's context; returns result.

    ``body`` may call ``wait_for(read, done)`` to wait for the worker's outcome.
    """
    script = "\n".join([
        WAIT_FOR,
        "import json",
        "from tenants.context import tenant_context",
        "from tenants.models import Tenant",
        f"with tenant_context(Tenant.objects.get(slug={slug!r})):",
        textwrap.indent(textwrap.dedent(body).strip(), "    "),
        "print(json.dumps(result, default=str))",
    ])
    output = topology.manage("shell", "-c", script).stdout.strip().splitlines()
    return json.loads(output[-1])
