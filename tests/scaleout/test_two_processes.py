"""Two server processes, one worker, shared PostgreSQL, Redis and tenant files:
what one process starts the other continues, and shared state (slots, limits,
queued work) is shared for real, not per process."""

from __future__ import annotations

import asyncio
import http.client
import json
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from tests.live_server import REPO, LiveServer
from tests.scaleout.conftest import in_tenant, report
from tests.scaleout.topology import Topology

REPLY_TIMEOUT = 30.0


# --- clients ---------------------------------------------------------------------------------


def request(server: LiveServer, method: str, path: str, body: dict[str, Any] | None = None
            ) -> tuple[int, Any]:
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        payload = None if body is None else json.dumps(body)
        conn.request(method, path, body=payload,
                     headers={"Content-Type": "application/json", "Host": "127.0.0.1"})
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def first_free_slot(server: LiveServer, slug: str, service_name: str = "Cleaning"
                    ) -> tuple[int, dict[str, Any]]:
    status, services = request(server, "GET", f"/api/b/{slug}/services")
    assert status == 200, services
    service = next(s["id"] for s in services if s["name"] == service_name)
    start = date.today() + timedelta(days=2)
    status, found = request(
        server, "GET",
        f"/api/b/{slug}/availability?service={service}&start={start}&end={start + timedelta(3)}",
    )
    assert status == 200 and found["slots"], found
    return service, found["slots"][0]


async def chat(server: LiveServer, slug: str, messages: list[str], conversation: str = ""
               ) -> list[dict[str, Any]]:
    """Connect, send each message and wait for its answer; every frame the server sent."""
    url = server.url.replace("http://", "ws://") + f"/ws/chat/{slug}/"
    if conversation:
        url += f"?conversation={conversation}"
    frames: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(
        url, headers={"Origin": server.url}
    ) as ws:

        async def until_answer() -> dict[str, Any]:
            while True:
                message = await asyncio.wait_for(ws.receive(), REPLY_TIMEOUT)
                if message.type != aiohttp.WSMsgType.TEXT:
                    return {"type": "closed", "code": ws.close_code}
                frame = json.loads(message.data)
                frames.append(frame)
                if frame["type"] in {"welcome", "reply", "error"}:
                    return frame

        await until_answer()
        for text in messages:
            await ws.send_str(json.dumps({"type": "message", "text": text}))
            await until_answer()
    return frames


def answers(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [frame for frame in frames if frame["type"] != "typing"]


# --- the tests -------------------------------------------------------------------------------


def test_a_chat_started_on_one_process_is_finished_on_the_other(
    topology: Topology, businesses: dict[str, str]
) -> None:
    slug = businesses["chatter"]
    started = answers(asyncio.run(chat(
        topology.a, slug, ["I'd like to book a checkup", "tomorrow afternoon"],
    )))
    conversation = started[0]["conversation"]
    assert [frame["type"] for frame in started] == ["welcome", "reply", "reply"], started
    assert "1)" in started[-1]["text"], started

    # Process B has never seen this conversation: it must come from the shared data.
    resumed = answers(asyncio.run(chat(
        topology.b, slug, ["1", "Jane Doe", "+12125550199", "yes"], conversation=conversation,
    )))
    assert resumed[0] == {"type": "welcome", "conversation": conversation,
                          "text": resumed[0]["text"]}
    assert [frame["type"] for frame in resumed] == ["welcome", *["reply"] * 4], resumed
    assert all(frame["conversation"] == conversation for frame in resumed[1:])
    assert resumed[-1]["text"].startswith("You're booked"), resumed

    booked = report(topology, slug)["appointments"]
    assert [(a["service"], a["channel"], a["customer_phone"], a["status"]) for a in booked] == [
        ("Checkup", "chat", "+12125550199", "booked")
    ], resumed


def test_a_booking_race_across_both_processes_has_one_winner(
    topology: Topology, businesses: dict[str, str]
) -> None:
    slug = businesses["racers"]
    service, slot = first_free_slot(topology.a, slug)
    racers = 16
    barrier = threading.Barrier(racers)
    statuses: list[int] = [0] * racers

    def race(n: int) -> None:
        server = topology.servers[n % 2]
        body = {"service": service, "staff": slot["staff_id"], "start": slot["start"],
                "name": f"Racer {n}", "phone": f"+1212555{2000 + n:04d}"}
        barrier.wait()
        statuses[n], _ = request(server, "POST", f"/api/b/{slug}/appointments", body)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(statuses) == [201] + [409] * (racers - 1), statuses
    booked = report(topology, slug)["appointments"]
    assert len(booked) == 1 and booked[0]["status"] == "booked"


def test_the_chat_rate_limit_is_shared_by_both_processes(
    topology: Topology, businesses: dict[str, str]
) -> None:
    limit = int(topology.env["AGENT_CHAT_RATE_PER_IP"])
    # The limit counts per minute in fixed windows: a run that straddles a window's
    # end proves nothing, so it is repeated (in the next window, on a fresh business).
    for slug in (businesses["limited"], businesses["limited-again"]):
        window = int(time.time()) // 60
        on_a = answers(asyncio.run(chat(topology.a, slug, ["hello"] * limit)))
        on_b = answers(asyncio.run(chat(topology.b, slug, ["hello"])))
        if int(time.time()) // 60 == window:
            break
    assert [frame["type"] for frame in on_a] == ["welcome", *["reply"] * limit], on_a
    # B counted nothing itself, yet refuses: the count lives in Redis.
    assert on_b[0]["type"] == "welcome"
    assert on_b[1]["type"] == "error" and on_b[1]["code"] == "rate_limited", on_b


def test_work_queued_by_the_servers_is_run_by_the_rq_worker(
    topology: Topology, businesses: dict[str, str]
) -> None:
    slug = businesses["queued"]
    service, slot = first_free_slot(topology.b, slug)
    status, booked = request(topology.b, "POST", f"/api/b/{slug}/appointments", {
        "service": service, "staff": slot["staff_id"], "start": slot["start"],
        "name": "Queue Tester", "phone": "+12125550177",
    })
    assert status == 201, booked
    reference = booked["reference"]

    # The confirmation is enqueued by process B after its commit and sent by the worker.
    sent = in_tenant(topology, slug, f"""
        from booking.models import Notification
        rows = Notification.objects.filter(appointment__reference={reference!r},
                                           kind="confirmation")
        # Until it has left both "scheduled" and "sending" (the worker's own step).
        pending = {{"scheduled", "sending"}}
        result = wait_for(lambda: list(rows.values_list("status", flat=True)),
                          lambda statuses: statuses and not pending & set(statuses))
    """)
    assert sent == ["sent"], topology.logs()[-6000:]


def test_a_reminder_scheduled_for_later_is_sent_when_it_is_due(
    topology: Topology, businesses: dict[str, str]
) -> None:
    slug = businesses["reminded"]
    service, slot = first_free_slot(topology.a, slug, "Checkup")
    status, booked = request(topology.a, "POST", f"/api/b/{slug}/appointments", {
        "service": service, "staff": slot["staff_id"], "start": slot["start"],
        "name": "Remy Minder", "phone": "+12125550166",
    })
    assert status == 201, booked

    # The business's offsets put the real reminders a day ahead; this one is due
    # in six seconds, scheduled through the same code path.
    scheduled = in_tenant(topology, slug, f"""
        from datetime import timedelta
        from django.utils import timezone
        from booking.models import Appointment
        from booking.notifications import notification_schedule
        appointment = Appointment.objects.select_related("customer").get(
            reference={booked["reference"]!r})
        due = timezone.now() + timedelta(seconds=6)
        row = notification_schedule(
            kind="reminder", channel="sms", recipient=appointment.customer.phone,
            dedupe_key=f"reminder:{{appointment.pk}}:test", scheduled_for=due,
            appointment=appointment, for_start=appointment.start)
        result = {{"id": row.pk, "due": row.scheduled_for.isoformat()}}
    """)

    sent = in_tenant(topology, slug, f"""
        from booking.models import Notification
        def read():
            row = Notification.objects.get(pk={scheduled["id"]})
            return {{"status": row.status, "attempts": row.attempts,
                     "sent_at": row.sent_at and row.sent_at.isoformat()}}
        result = wait_for(read, lambda found: found["status"] in {{"sent", "failed", "skipped"}})
    """)
    assert sent["status"] == "sent" and sent["attempts"] == 1, (sent, topology.logs()[-6000:])
    # Run when due, not before (an early run would have left it scheduled).
    assert sent["sent_at"] >= scheduled["due"]


def test_a_phone_call_books_through_process_b(
    topology: Topology, businesses: dict[str, str]
) -> None:
    slug = businesses["caller"]
    # simulate_call signs each webhook as Twilio would, for the URL it calls.
    done = subprocess.run(
        [sys.executable, "manage.py", "simulate_call", slug, "--base-url", topology.b.url,
         "--from", "+12125550142"],
        cwd=REPO, env=topology.b.env, capture_output=True, text=True, timeout=120,
        input="Hi, this is Jane Doe, can I book a cleaning tomorrow at 3?\nyes\nno thanks, bye\n",
    )
    assert done.returncode == 0, done.stderr + topology.logs()[-6000:]
    heard = done.stdout.splitlines()
    assert "Cleaning" in heard[1] and "3:00 PM" in heard[1], heard
    assert heard[2].startswith("You're booked"), heard
    booked = report(topology, slug)["appointments"]
    assert [(a["service"], a["channel"], a["customer_phone"], a["status"]) for a in booked] == [
        ("Cleaning", "phone", "+12125550142", "booked")
    ]
