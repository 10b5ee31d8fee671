"""Where one booking's time goes, in-process and one at a time (no contention).

The throughput benchmark (``bench.booking_http``) is bounded by what one booking
costs the server. This script books distinct slots of one premium business
(10 staff, 15-minute service, the set-up ``bench.booking_http`` uses) and
compares, taking turns in short blocks:

* ``appointment_book``, connections left open (a long-lived worker thread);
* the same, then ``connections.close_all()`` after each booking: what ends
  every request in production, where ``CONN_MAX_AGE`` is 0 and the ASGI
  handler runs each request's view in a thread of its own;
* the same while this process holds one more connection to the tenant's file
  and one to the control plane's, so the request's close is not the last
  connection to the file and SQLite skips its checkpoint-on-close;
* ``POST /api/b/<slug>/appointments`` through Django's WSGI handler, without
  and with those extra connections.

It also counts the queries of one booking on each database.

Run: ``.venv/bin/python -m bench.booking_cost [--rounds 6]``
"""

from __future__ import annotations

import argparse
import io
import json
import sqlite3
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bench.availability import start_quick
from bench.booking_http import ZONE, setup_document, slot_plan
from bench.common import machine, quantile_ms, say

SLUG = "bench-cost"

Samples = tuple[list[int], list[int]]  # (wall ns, CPU ns)


def post_environ(path: str, body: bytes) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": "testserver", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver", "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def row(label: str, samples: Samples) -> tuple[float, float]:
    wall, cpu = samples
    wall_ms, cpu_ms = statistics.median(wall) / 1e6, statistics.median(cpu) / 1e6
    say(f"  {label:<58} CPU {cpu_ms:6.2f} ms | wall median {wall_ms:6.2f} ms, "
        f"p90 {quantile_ms(wall, 0.9):6.2f} ms (n={len(wall)})")
    return wall_ms, cpu_ms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--block", type=int, default=25)
    args = parser.parse_args()

    start_quick("booking-cost")
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    from booking.config import config_import
    from booking.models import Appointment, Service, StaffMember
    from booking.services import appointment_book, customer_details_clean
    from tenants.context import tenant_context
    from tenants.db import alias_for, tenant_db_path
    from tenants.services import tenant_create

    say(f"machine: {machine()}")
    tenant = tenant_create(slug=SLUG, name="Cost Clinic", timezone=ZONE,
                           owner_email="owner@cost.invalid", plan="premium")
    with tenant_context(tenant):
        config_import(setup_document("Cost Clinic", 10, "08:00", "20:00", 15))
        service_id = Service.objects.get().pk
        staff = sorted(StaffMember.objects.values_list("pk", flat=True))
    tz = ZoneInfo(ZONE)
    plan = iter(slot_plan(datetime.now(tz).date() + timedelta(days=1), 300, staff,
                          8 * 60, 20 * 60, 15))
    counter = iter(range(10**6))

    def book() -> None:
        staff_id, start = next(plan)
        with tenant_context(tenant):
            customer = customer_details_clean(name="Cost Customer",
                                              phone=f"+1646{2000000 + next(counter):07d}")
            appointment_book(service_id=service_id, start=datetime.fromisoformat(start),
                             customer=customer, staff_id=staff_id,
                             channel=Appointment.Channel.API)

    def book_then_close() -> None:
        book()
        connections.close_all()

    handler = WSGIHandler()
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        statuses.append(status)

    def post() -> None:
        staff_id, start = next(plan)
        body = json.dumps({"service": service_id, "staff": staff_id, "start": start,
                           "name": "Cost Customer",
                           "phone": f"+1646{2000000 + next(counter):07d}"}).encode()
        response = handler(post_environ(f"/api/b/{SLUG}/appointments", body), start_response)
        reply = b"".join(response)
        response.close()  # type: ignore[attr-defined]  # request_finished closes connections
        if not statuses[-1].startswith("201"):
            raise SystemExit(f"booking answered {statuses[-1]}: {reply[:300]!r}")

    keepers: list[sqlite3.Connection] = []

    def keep(on: bool) -> None:
        for conn in keepers:
            conn.close()
        keepers.clear()
        if on:
            for path in (tenant_db_path(tenant.id), settings.DATABASES["default"]["NAME"]):
                conn = sqlite3.connect(path)
                # A read opens the WAL; from then on this connection holds the
                # shared lock that makes every other close "not the last".
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                keepers.append(conn)

    modes: dict[str, tuple[Callable[[], None], bool]] = {
        "appointment_book, connections kept open": (book, False),
        "appointment_book + close_all() (as every request ends)": (book_then_close, False),
        "  same, another connection holding each file open": (book_then_close, True),
        "POST /api/b/<slug>/appointments (WSGI in-process)": (post, False),
        "  same, another connection holding each file open ": (post, True),
    }
    samples: dict[str, Samples] = {label: ([], []) for label in modes}
    for fn, keeper in modes.values():  # warm-up
        keep(keeper)
        for _ in range(5):
            fn()
    for _ in range(args.rounds):
        for label, (fn, keeper) in modes.items():
            keep(keeper)
            wall, cpu = samples[label]
            for _ in range(args.block):
                began, began_cpu = time.perf_counter_ns(), time.process_time_ns()
                fn()
                cpu.append(time.process_time_ns() - began_cpu)
                wall.append(time.perf_counter_ns() - began)
    keep(False)
    connections.close_all()

    say("one booking at a time:")
    results = {label: row(label.rstrip(), samples[label]) for label in modes}
    kept, closed, closed_kept, posted, posted_kept = results.values()
    say(f"closing the connections after a booking adds {closed[0] - kept[0]:.1f} ms wall "
        f"({closed[1] - kept[1]:.1f} ms CPU); with the files held open by another connection "
        f"{closed_kept[0] - kept[0]:.1f} ms")
    say(f"the whole request: {posted[0]:.1f} ms wall, {posted[1]:.1f} ms CPU; with the files "
        f"held open {posted_kept[0]:.1f} ms wall, {posted_kept[1]:.1f} ms CPU "
        f"(one thread, no waiting: at most {1000 / posted_kept[1]:.0f} bookings/s per core)")

    tenant_queries = CaptureQueriesContext(connections[alias_for(tenant.id)])
    control_queries = CaptureQueriesContext(connections["default"])
    with tenant_queries, control_queries:
        book()
    writes = sum(1 for q in tenant_queries.captured_queries if q["sql"].startswith("BEGIN"))
    control = Counter(q["sql"].split(" ")[0] + " " + q["sql"].split('"')[1]
                      for q in control_queries.captured_queries)
    say(f"queries of one booking: {len(tenant_queries.captured_queries)} on the tenant's database "
        f"({writes} write transactions), {len(control_queries.captured_queries)} on the control "
        f"plane (" + ", ".join(f"{n} x {sql}" for sql, n in sorted(control.items())) + ")")


if __name__ == "__main__":
    main()
