"""Bookings over real HTTP against one daphne process: a race for one slot, then throughput.

The server is started the way production runs it (``python -m daphne
smartscheduler.asgi:application``, production settings with DEBUG off, its own
throwaway VAR_DIR, explicit environment as in tests/e2e/conftest.py) on a
loopback socket it inherits. Businesses are provisioned with the management
commands ``create_tenant`` and ``tenant_config --import``. Clients are threads
of this process, each with its own keep-alive ``http.client`` connection,
opened before the clock starts.

* race: 100 clients POST the same slot (same staff member) at once, released
  together by a barrier; exactly one may get 201, every other one 409.
* throughput: many clients book distinct slots (different staff members and
  times) of one premium business as fast as the server answers.

Every request loop is bounded in count and time, and only 127.0.0.1 is used.

Run: ``.venv/bin/python -m bench.booking_http [--py-spy PATH]``
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests import live_server

REPO = Path(__file__).resolve().parents[1]
ZONE = "America/New_York"
RACE_SLUG, RUSH_SLUG = "bench-race", "bench-rush"
RACERS = 100
REQUEST_TIMEOUT = 30.0
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def say(line: str = "") -> None:
    print(line, flush=True)


def server_env(var_dir: Path) -> dict[str, str]:
    # Thousands of bookings from one address: the per-address limits would
    # answer 429 to the load itself.
    return live_server.server_env(var_dir, RATELIMIT_ENABLE="false")


# The set-up commands run in one process. dj-stripe's tables are made from its
# models instead of by replaying its migrations: the replay costs about 100 s of
# CPU per fresh database (control plane and tenant template alike), and no
# request measured here reads those tables. The server itself runs the plain
# production settings.
SETUP = """
import json, sys, django
from django.conf import settings
django.setup()
if sys.argv[2] == "skip":
    settings.MIGRATION_MODULES = {**settings.MIGRATION_MODULES, "djstripe": None}
from django.core.management import call_command
for command in json.loads(sys.argv[1]):
    call_command(*command)
"""


def manage(env: dict[str, str], commands: list[list[str]], *,
           full_migrations: bool) -> dict[str, str]:
    """Run the commands; returns the slug -> id of the businesses create_tenant made."""
    done = subprocess.run(
        [sys.executable, "-c", SETUP, json.dumps(commands),
         "full" if full_migrations else "skip"],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"set-up failed:\n{done.stdout}{done.stderr}")
    lines = done.stdout.splitlines()
    return {slug.removeprefix("slug: "): tenant_id.removeprefix("id: ")
            for tenant_id, slug in pairwise(lines)
            if tenant_id.startswith("id: ") and slug.startswith("slug: ")}


def provision_commands(var_dir: Path, slug: str, setup: dict[str, Any]) -> list[list[str]]:
    path = var_dir / f"{slug}.json"
    path.write_text(json.dumps(setup))
    return [
        ["create_tenant", "--slug", slug, "--name", setup["name"], "--timezone", ZONE,
         "--owner-email", f"owner@{slug}.invalid", "--plan", "premium"],
        ["tenant_config", slug, "--import", str(path)],
    ]


def setup_document(name: str, staff: int, opens: str, closes: str,
                   service_minutes: int) -> dict[str, Any]:
    hours = {day: [[opens, closes]] for day in WEEK}
    return {
        "name": name,
        "timezone": ZONE,
        "policy": {"slot_step_minutes": service_minutes, "min_notice_minutes": 60,
                   "max_days_ahead": 365, "cancellation_notice_minutes": 120,
                   "reminder_offsets_minutes": [1440, 120], "waitlist_hold_minutes": 15},
        "services": [{"name": "Visit", "duration_minutes": service_minutes, "price": "50.00",
                      "buffer_before_minutes": 0, "buffer_after_minutes": 0,
                      "description": ""}],
        "staff": [{"name": f"Staff {n + 1:02d}", "services": ["Visit"], "hours": hours}
                  for n in range(staff)],
        "closures": [],
    }


@dataclass
class Server:
    url: str
    host: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def daphne(env: dict[str, str], var_dir: Path) -> Iterator[Server]:
    # The server inherits a listening socket: no port race, and early requests
    # wait in the backlog while it starts.
    sock = live_server.listening_socket(backlog=256)
    port = sock.getsockname()[1]
    log_path = var_dir / "server.log"
    log_path.unlink(missing_ok=True)  # this run's log only (start_daphne appends)
    process = live_server.start_daphne(sock, env, log_path)
    sock.close()
    server = Server(f"http://127.0.0.1:{port}", "127.0.0.1", port, process, log_path)
    try:
        with urllib.request.urlopen(f"{server.url}/healthz", timeout=60) as response:
            assert response.status == 200
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Client:
    """One keep-alive connection; reconnects if the server closed it."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.conn = http.client.HTTPConnection(server.host, server.port, timeout=REQUEST_TIMEOUT)
        self.conn.connect()

    def request(self, method: str, path: str, body: dict[str, Any] | None = None,
                ) -> tuple[int, bytes]:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Host": "127.0.0.1", "Content-Type": "application/json"}
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=payload, headers=headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if attempt:
                    raise
                self.conn.close()
                self.conn.connect()
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


def get_json(client: Client, path: str) -> Any:
    status, body = client.request("GET", path)
    if status != 200:
        raise SystemExit(f"GET {path} answered {status}: {body[:300]!r}")
    return json.loads(body)


def ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def spread(latencies: list[float]) -> str:
    return (f"p50 {ms(latencies, 0.5):.1f} ms, p90 {ms(latencies, 0.9):.1f} ms, "
            f"p99 {ms(latencies, 0.99):.1f} ms, max {max(latencies) * 1000:.1f} ms")


# --- the race ---------------------------------------------------------------------------


def race(server: Server, *, service: int, staff: int, start: str) -> dict[str, Any]:
    path = f"/api/b/{RACE_SLUG}/appointments"
    clients = [Client(server) for _ in range(RACERS)]
    barrier = threading.Barrier(RACERS + 1)
    results: list[tuple[int, float, float] | None] = [None] * RACERS

    def racer(n: int) -> None:
        body = {"service": service, "staff": staff, "start": start,
                "name": f"Racer {n}", "phone": f"+1212555{1000 + n:04d}"}
        barrier.wait()
        began = time.perf_counter()
        try:
            status, _ = clients[n].request("POST", path, body)
        except OSError:
            status = -1
        results[n] = (status, began, time.perf_counter())

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(RACERS)]
    for thread in threads:
        thread.start()
    barrier.wait()
    released = time.perf_counter()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT * 2)
    for client in clients:
        client.close()
    done = [r for r in results if r is not None]
    statuses = Counter(status for status, _, _ in done)
    return {
        "statuses": statuses,
        "wall": max(end for _, _, end in done) - released,
        "latencies": [end - began for _, began, end in done],
        "missing": RACERS - len(done),
    }


# --- throughput -------------------------------------------------------------------------


@dataclass
class Rush:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0

    @property
    def booked(self) -> int:
        return self.statuses[201]


def slot_plan(first: date, days: int, staff: list[int], opens: int, closes: int,
              step: int) -> list[tuple[int, str]]:
    """Every (staff id, start) of the business in order of day, time, staff."""
    tz = ZoneInfo(ZONE)
    plan = []
    for d in range(days):
        day = first + timedelta(days=d)
        for minute in range(opens, closes - step + 1, step):
            local = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=tz)
            plan.extend((member, local.isoformat()) for member in staff)
    return plan


def rush(server: Server, *, service: int, slots: list[tuple[int, str]], clients: int,
         time_cap: float) -> Rush:
    """``clients`` threads book ``slots`` between them (client c takes every c-th slot)."""
    path = f"/api/b/{RUSH_SLUG}/appointments"
    connections = [Client(server) for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    out = Rush()
    lock = threading.Lock()
    deadline = [0.0]

    def worker(c: int) -> None:
        statuses: Counter[int] = Counter()
        latencies: list[float] = []
        errors: list[str] = []
        barrier.wait()
        for k in range(c, len(slots), clients):
            if time.perf_counter() > deadline[0]:
                break
            staff, start = slots[k]
            body = {"service": service, "staff": staff, "start": start,
                    "name": f"Customer {k}", "phone": f"+1646{2000000 + k:07d}"}
            began = time.perf_counter()
            try:
                status, reply = connections[c].request("POST", path, body)
            except OSError as exc:
                status, reply = -1, repr(exc).encode()
            latencies.append(time.perf_counter() - began)
            statuses[status] += 1
            if status != 201 and len(errors) < 3:
                errors.append(f"{status}: {reply[:200]!r}")
        with lock:
            out.statuses.update(statuses)
            out.latencies.extend(latencies)
            out.errors.extend(errors)

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    cpu0, server0 = time.process_time(), server.cpu_seconds()
    deadline[0] = time.perf_counter() + time_cap
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    out.wall = time.perf_counter() - began
    out.server_cpu = server.cpu_seconds() - server0
    out.client_cpu = time.process_time() - cpu0
    for connection in connections:
        connection.close()
    return out


@contextmanager
def sampled(py_spy: str | None, server: Server, var_dir: Path,
            seconds: int) -> Iterator[Path | None]:
    """py-spy samples every thread of the server while the block runs."""
    if not py_spy:
        yield None
        return
    out = var_dir / "py-spy.txt"
    proc = subprocess.Popen(
        [py_spy, "record", "--pid", str(server.process.pid), "--rate", "250",
         "--duration", str(seconds), "--format", "raw", "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    time.sleep(1.0)  # let py-spy attach before the load starts
    try:
        yield out
    finally:
        proc.wait(timeout=seconds + 60)


HELD = {False: "", True: " (files held open)"}


@contextmanager
def held_open(paths: list[Path]) -> Iterator[None]:
    """Hold a reading connection to each SQLite file while the block runs.

    Then no connection the server closes is the last one to its file, so SQLite
    skips the checkpoint (and its fsyncs) that a last close does: the effect of
    a server that kept one connection per busy database open.
    """
    conns = []
    for path in paths:
        conn = sqlite3.connect(path)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        conns.append(conn)
    try:
        yield
    finally:
        for conn in conns:
            conn.close()


# (label, function, file) of the frames whose inclusive share is reported.
AREAS = (
    ("the API view (booking.api.appointment_create)", "appointment_create", "booking/api.py"),
    ("  appointment_book (one durable transaction)", "appointment_book", "booking/services.py"),
    ("    _slot_check (engine_data's 4 queries + check_slot)", "_slot_check",
     "booking/services.py"),
    ("    _customer_save", "_customer_save", "booking/services.py"),
    ("    _new_reference", "_new_reference", "booking/services.py"),
    ("    appointment_change_record (notification rows, tasks on commit)",
     "appointment_change_record", "booking/notifications.py"),
    ("  customer_details_clean (phone parsing)", "customer_details_clean",
     "booking/services.py"),
    ("  manage_url_for (signing)", "manage_url_for", "booking/tokens.py"),
    ("opening SQLite connections", "get_new_connection", "sqlite3/base.py"),
    ("closing SQLite connections", "_close", "backends/base/base.py"),
    ("commits", "_commit", "backends/base/base.py"),
    ("executing SQL (sqlite3, lock waits included)", "execute", "sqlite3/base.py"),
    ("building SQL (Django's compiler)", "as_sql", "django/db/models/sql/compiler.py"),
)


# Leaf frames of threads that wait for work rather than do it.
IDLE = frozenset({"EpollSelector.select", "Condition.wait", "_worker",
                  "Thread._wait_for_tstate_lock", "Event.wait"})


def profile_summary(raw: Path) -> None:
    """Share of the server's busy samples by area (inclusive) and by function (own)."""
    busy = 0
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        names = [frame.split(" (", 1)[0] for frame in frames]
        if names and names[-1] in IDLE:
            continue
        busy += count
        own[frames[-1]] += count
        for label, function, path in AREAS:
            if any((name == function or name.endswith("." + function)) and path in frame
                   for name, frame in zip(names, frames, strict=True)):
                inclusive[label] += count
    if not busy:
        say("py-spy: no samples")
        return
    say(f"py-spy: {busy} samples of the server's busy threads (waiting threads left out)")
    say("  inclusive share by area:")
    for label, _, _ in AREAS:
        say(f"    {inclusive[label] / busy:6.1%}  {label}")
    say("  top functions by own samples:")
    for frame, count in own.most_common(12):
        say(f"    {count / busy:6.1%}  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--race-rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--bookings", type=int, default=1500, help="per throughput round")
    parser.add_argument("--rounds", type=int, default=2, help="throughput rounds per client count")
    parser.add_argument("--time-cap", type=float, default=12.0, help="seconds per round, at most")
    parser.add_argument("--py-spy", default=None, help="path to py-spy: profile the first round")
    parser.add_argument("--hold-files", action="store_true",
                        help="also run every round with the SQLite files held open (see held_open)")
    parser.add_argument("--keep-log", default=None, help="copy the server's log here")
    parser.add_argument("--full-migrations", action="store_true",
                        help="replay dj-stripe's migrations too (adds minutes of set-up)")
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="ss-bench-http-"))
    try:
        run(args, var_dir)
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


def run(args: argparse.Namespace, var_dir: Path) -> None:
    import platform

    say(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; "
        f"load average at start {os.getloadavg()[0]:.1f}")
    env = server_env(var_dir)
    began = time.perf_counter()
    staff_count, opens, closes, step = 10, 8 * 60, 20 * 60, 15
    tenant_ids = manage(env, [
        ["migrate", "--verbosity", "0"],
        *provision_commands(var_dir, RACE_SLUG,
                            setup_document("Race Clinic", 1, "09:00", "17:00", 30)),
        *provision_commands(var_dir, RUSH_SLUG, setup_document(
            "Rush Clinic", staff_count, f"{opens // 60:02d}:00", f"{closes // 60:02d}:00", step)),
    ], full_migrations=args.full_migrations)
    say(f"migrated, then provisioned {RACE_SLUG} and {RUSH_SLUG} (premium) with create_tenant "
        f"and tenant_config --import in {time.perf_counter() - began:.1f} s"
        + ("" if args.full_migrations else " (dj-stripe's tables from its models)"))

    tz = ZoneInfo(ZONE)
    tomorrow = datetime.now(tz).date() + timedelta(days=1)
    with daphne(env, var_dir) as server:
        probe = Client(server)
        race_service = get_json(probe, f"/api/b/{RACE_SLUG}/services")[0]["id"]
        rush_service = get_json(probe, f"/api/b/{RUSH_SLUG}/services")[0]["id"]
        day = tomorrow.isoformat()
        found = get_json(probe, f"/api/b/{RACE_SLUG}/availability?service={race_service}"
                                f"&start={day}&end={day}")["slots"]
        race_staff = found[0]["staff_id"]
        rush_staff = sorted({s["staff_id"] for s in get_json(
            probe, f"/api/b/{RUSH_SLUG}/availability?service={rush_service}"
                   f"&start={day}&end={day}")["slots"]})
        probe.close()

        # Warm-up: the first requests of a process import and set up lazily.
        warm = Client(server)
        for _ in range(20):
            get_json(warm, f"/api/b/{RUSH_SLUG}/services")
        warm.close()

        say(f"race: {RACERS} clients POST the same slot at once, {args.race_rounds} rounds "
            f"(a new slot each round)")
        races = []
        for n in range(args.race_rounds):
            start = datetime.combine(tomorrow, datetime.min.time(), tz).replace(hour=9)
            start += timedelta(minutes=30 * n)
            result = race(server, service=race_service, staff=race_staff,
                          start=start.isoformat())
            races.append(result)
            statuses = ", ".join(f"{s}: {c}" for s, c in sorted(result["statuses"].items()))
            say(f"  round {n + 1}: {statuses}; wall {result['wall'] * 1000:.0f} ms; "
                f"{spread(result['latencies'])}" + (f"; {result['missing']} no answer"
                                                     if result["missing"] else ""))
        ok = all(r["statuses"][201] == 1 and r["statuses"][409] == RACERS - 1 for r in races)
        fives = sum(c for r in races for s, c in r["statuses"].items() if s >= 500 or s < 0)
        all_latencies = [x for r in races for x in r["latencies"]]
        say(f"race: exactly one 201 and {RACERS - 1} 409 every round: {ok}; 5xx/failed: {fives}; "
            f"wall median {statistics.median(r['wall'] for r in races) * 1000:.0f} ms; "
            f"all requests: {spread(all_latencies)}")

        # Throughput: distinct slots, consecutive blocks of the plan per round.
        plan = slot_plan(tomorrow, 300, rush_staff, opens, closes, step)
        used = 0
        modes = (False, True) if args.hold_files else (False,)
        results: dict[tuple[int, bool], list[Rush]] = {
            (c, held): [] for c in args.clients for held in modes}
        profiled = False
        rush_file = var_dir / "tenants" / f"{tenant_ids[RUSH_SLUG]}.sqlite3"
        for _ in range(args.rounds):
            for clients, held in results:
                slots = plan[used:used + args.bookings]
                used += args.bookings
                window = int(args.time_cap) + 5
                with held_open([rush_file, var_dir / "control.sqlite3"] if held else []), \
                        sampled(None if profiled else args.py_spy, server, var_dir, window) as raw:
                    got = rush(server, service=rush_service, slots=slots, clients=clients,
                               time_cap=args.time_cap)
                if raw is not None:
                    profiled = True
                results[clients, held].append(got)
                statuses = ", ".join(f"{s}: {c}" for s, c in sorted(got.statuses.items()))
                say(f"  {clients:3d} clients{HELD[held]}: {got.booked / got.wall:6.1f} bookings/s "
                    f"({got.booked} in {got.wall:.1f} s; {statuses}); {spread(got.latencies)}; "
                    f"server CPU {got.server_cpu / max(got.booked, 1) * 1000:.2f} ms/booking, "
                    f"client CPU {got.client_cpu / max(got.booked, 1) * 1000:.2f} ms/booking")
                for error in got.errors[:3]:
                    say(f"      {error}")
                if raw is not None and raw.exists():
                    profile_summary(raw)
        for (clients, held), rounds in results.items():
            rates = [r.booked / r.wall for r in rounds]
            latencies = [x for r in rounds for x in r.latencies]
            errors = sum(c for r in rounds for s, c in r.statuses.items() if s != 201)
            cpu = statistics.median(r.server_cpu / max(r.booked, 1) for r in rounds) * 1000
            say(f"throughput, {clients} clients{HELD[held]}: median "
                f"{statistics.median(rates):.1f} bookings/s "
                f"(rounds: {', '.join(f'{r:.1f}' for r in rates)}; goal >= 200/s); "
                f"{spread(latencies)}; non-201: {errors}; server CPU {cpu:.2f} ms/booking")

        log = server.log_path.read_text(errors="replace")
        tracebacks = log.count("Traceback")
        busy = log.count("database busy answering")
        listeners = log.count("appointment_changed listener")
        say(f"server log: {tracebacks} tracebacks; {busy} 'database busy' answers (503); "
            f"{listeners} failed after-commit listeners (booked, but its notifications "
            f"were not scheduled)")
        if args.keep_log:
            shutil.copyfile(server.log_path, args.keep_log)
    if not ok or fives:
        raise SystemExit("the race did not end with exactly one 201 and only 409s")
        if tracebacks:
            first = log[log.index("Traceback"):].splitlines()
            end = next((n for n, line in enumerate(first[1:], 1)
                        if line and not line.startswith(" ")), len(first) - 1)
            say("  first one ends: " + " | ".join(first[max(1, end - 4):end + 1]))


if __name__ == "__main__":
    main()
