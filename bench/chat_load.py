"""Chat under load: many live websocket conversations on one server process.

Starts the real ASGI server (daphne, production settings, the offline
assistant) on a throwaway VAR_DIR with the demo business, connects ``--clients``
websockets to ``/ws/chat/demo-dental/`` from one asyncio process, and lets each
send a message every 1-3 s (uniform, 2 s on average) for ``--duration``
seconds. A turn's latency is the time from sending ``{"type": "message"}`` to
receiving its ``{"type": "reply"}``. The server's CPU time comes from
``/proc/<pid>/stat``.

    .venv/bin/python -m bench.chat_load                  # 200 clients, 75 s
    .venv/bin/python -m bench.chat_load --profile 20     # + a py-spy profile
    .venv/bin/python -m bench.chat_load --in-process 600 # CPU and SQL per turn, no server

``--in-process N`` runs N turns of the same scripts through the consumer's turn
(``ChatConsumer._turn``: connection handling, tenant context, the engine, the
offline assistant) in this process, one thread, no network, over 20
conversations of the demo business; it reports CPU time and SQL statements per
turn on the business's database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import django

from tests import live_server

REPO = Path(__file__).resolve().parents[1]
SLUG = "demo-dental"
# Every client connects from 127.0.0.1: the per-address limit (messages and
# connections per minute) would refuse most of them, so the bench lifts both limits.
RATE_ENV = {"AGENT_CHAT_RATE_PER_IP": "1000000", "AGENT_CHAT_RATE_PER_CONNECTION": "10000",
            "RATELIMIT_ENABLE": "false"}
REPLY_TIMEOUT = 30.0

# Conversations a customer might have with the demo dental practice: questions,
# availability searches and full bookings (service, time, pick, name, phone, yes).
SCRIPTS: tuple[tuple[str, ...], ...] = (
    ("How much is a cleaning?", "And whitening?", "What are your opening hours?"),
    ("Hi, what services do you offer?", "how much is a filling", "where are you located?"),
    ("anything tomorrow afternoon?", "a checkup", "thanks"),
    ("Do you have a checkup next Tuesday morning?", "any later?", "ok thanks, bye"),
    ("What's your cancellation policy?", "Do you do whitening on Saturdays?"),
    ("I'd like to book a cleaning", "Friday morning", "1", "{name}", "{phone}", "yes"),
    ("Can I book a checkup with Dr. Patel next week?", "Wednesday afternoon", "2",
     "{name}", "{phone}", "yes"),
    ("book a filling on Monday at 10am", "{name}", "{phone}", "yes"),
    ("I need a whitening appointment, earliest you have", "1", "{name}", "{phone}", "no",
     "never mind"),
)
FIRST_NAMES = ("Ana", "Ben", "Chloe", "Dev", "Eli", "Fatima", "Gus", "Hana", "Ivan", "June")
LAST_NAMES = ("Lopez", "Okafor", "Nguyen", "Schmidt", "Rossi", "Kowalski", "Tanaka", "Singh")


def say(line: str = "") -> None:
    print(line, flush=True)


# --- the server ------------------------------------------------------------------------


def server_env(var_dir: Path) -> dict[str, str]:
    return live_server.server_env(var_dir, **RATE_ENV)


def prepare(env: dict[str, str]) -> None:
    for command in (["migrate", "--verbosity", "0"], ["seed_demo"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=REPO, env=env, check=True,
                       stdout=subprocess.DEVNULL)


def start_server(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    # An inherited listening socket: no port race, early connections wait in the backlog.
    sock = live_server.listening_socket(backlog=1024)
    port = sock.getsockname()[1]
    log_path.unlink(missing_ok=True)  # this run's log only (start_daphne appends)
    server = live_server.start_daphne(sock, env, log_path)
    sock.close()
    url = f"http://127.0.0.1:{port}"
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=60) as response:
            if response.status != 200:
                raise RuntimeError(f"server not healthy: {response.status}")
    except BaseException:
        server.kill()
        server.wait()
        raise
    return server, url


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the clients -----------------------------------------------------------------------


@dataclass
class Results:
    latencies_ns: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    connected: int = 0
    connect_ns: list[int] = field(default_factory=list)
    measuring: bool = False
    by_step: dict[str, list[int]] = field(default_factory=dict)


def fill(text: str, rng: random.Random, number: int) -> str:
    name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    # 555-01xx numbers are reserved for fiction; an area code that exists keeps it valid.
    phone = f"(212) 555-01{number % 100:02d}"
    return text.replace("{name}", name).replace("{phone}", phone)


async def client(
    number: int, session: aiohttp.ClientSession, url: str, origin: str, results: Results,
    start_at: float, stop_at: float, interval: tuple[float, float],
) -> None:
    rng = random.Random(number)
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    began = time.perf_counter_ns()
    try:
        ws = await session.ws_connect(url, headers={"Origin": origin}, heartbeat=None,
                                      timeout=aiohttp.ClientWSTimeout(ws_close=5))
    except Exception as exc:  # noqa: BLE001 - every failure is a result here
        results.errors.append(f"connect: {exc!r}")
        return
    try:
        welcome = await asyncio.wait_for(ws.receive_json(), REPLY_TIMEOUT)
        if welcome.get("type") != "welcome":
            results.errors.append(f"connect: {welcome}")
            return
        results.connect_ns.append(time.perf_counter_ns() - began)
        results.connected += 1
        script: list[str] = []
        next_send = time.monotonic() + rng.uniform(*interval)
        while True:
            await asyncio.sleep(max(0.0, next_send - time.monotonic()))
            if time.monotonic() >= stop_at:
                break
            if not script:
                script = list(rng.choice(SCRIPTS))
            template = script.pop(0)
            text = fill(template, rng, number)
            measured = results.measuring
            sent = time.perf_counter_ns()
            await ws.send_str(json.dumps({"type": "message", "text": text}))
            while True:
                frame = await asyncio.wait_for(ws.receive(), REPLY_TIMEOUT)
                if frame.type != aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(f"closed: {frame.type.name} {frame.data!r}")
                data = json.loads(frame.data)
                if data.get("type") == "typing":
                    continue
                break
            elapsed = time.perf_counter_ns() - sent
            if data.get("type") != "reply":
                results.errors.append(f"turn: {data}")
            elif measured and results.measuring:
                results.latencies_ns.append(elapsed)
                results.by_step.setdefault(template, []).append(elapsed)
            # The next message is due 1-3 s after this one was sent, not after its reply.
            next_send += rng.uniform(*interval)
    except Exception as exc:  # noqa: BLE001 - every failure is a result here
        results.errors.append(f"client {number}: {exc!r}")
    finally:
        await ws.close()


def quantile_ms(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


async def load(args: argparse.Namespace, url: str, server_pid: int) -> None:
    results = Results()
    ws_url = url.replace("http://", "ws://") + f"/ws/chat/{SLUG}/"
    now = time.monotonic()
    ramp_end = now + args.ramp
    # Steady state starts once every client is connected and has had a turn or two.
    measure_from = ramp_end + 5.0
    stop_at = measure_from + args.duration
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [
            asyncio.create_task(client(
                n, session, ws_url, url, results, now + args.ramp * n / args.clients, stop_at,
                (args.min_interval, args.max_interval),
            ))
            for n in range(args.clients)
        ]
        await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
        say(f"connected: {results.connected} of {args.clients} "
            f"(connect + welcome: median {quantile_ms(results.connect_ns, 0.5):.1f} ms, "
            f"max {max(results.connect_ns, default=0) / 1e6:.1f} ms); errors so far: "
            f"{len(results.errors)}")
        results.measuring = True
        cpu_before, client_before = cpu_seconds(server_pid), time.process_time()
        wall_before = time.monotonic()
        profiler = None
        if args.profile:
            out = Path(args.profile_out).resolve()
            profiler = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(server_pid),
                 "-d", str(args.profile), "-r", "200", "-f", args.profile_format,
                 "-o", str(out), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            )
        await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
        results.measuring = False
        wall = time.monotonic() - wall_before
        server_cpu = cpu_seconds(server_pid) - cpu_before
        client_cpu = time.process_time() - client_before
        await asyncio.gather(*tasks)
        if profiler is not None:
            profiler.wait()
            say(f"py-spy profile ({args.profile} s of steady state): {args.profile_out}")

    lat = results.latencies_ns
    say(f"steady state: {wall:.1f} s, {len(lat)} turns, {len(lat) / wall:.1f} turns/s")
    if lat:
        say("turn latency (message sent -> reply received): "
            f"p50 {quantile_ms(lat, 0.5):.1f} ms, p90 {quantile_ms(lat, 0.9):.1f} ms, "
            f"p99 {quantile_ms(lat, 0.99):.1f} ms, max {max(lat) / 1e6:.1f} ms")
    say(f"server CPU: {server_cpu:.1f} s in {wall:.1f} s = {100 * server_cpu / wall:.0f}% "
        f"of one core ({1e3 * server_cpu / max(1, len(lat)):.2f} ms per turn); "
        f"load client CPU: {100 * client_cpu / wall:.0f}% of one core")
    say(f"errors: {len(results.errors)}")
    for error in results.errors[:10]:
        say(f"  {error}")
    if args.by_message:
        say("per message (p50 / p99 ms, n):")
        for text, values in sorted(results.by_step.items(), key=lambda kv: -quantile_ms(kv[1], .5)):
            say(f"  {quantile_ms(values, 0.5):7.1f} {quantile_ms(values, 0.99):7.1f} "
                f"{len(values):6d}  {text}")
    p50 = quantile_ms(lat, 0.5) if lat else float("inf")
    p99 = quantile_ms(lat, 0.99) if lat else float("inf")
    ok = p50 <= 10 and p99 <= 50 and not results.errors and results.connected == args.clients
    say(f"goal (p50 <= 10 ms, p99 <= 50 ms, no errors): {'met' if ok else 'NOT met'}")


def in_process(turns: int, conversations: int = 20, warm_up: int = 60) -> None:
    """CPU time and SQL statements per turn, in this process and thread."""
    import io

    from bench.availability import start_quick

    start_quick("chat-turns")
    from django.core.management import call_command
    from django.db import connections
    from django.db.backends.signals import connection_created

    call_command("seed_demo", stdout=io.StringIO())
    from agent.consumers import ChatConsumer
    from agent.engine import conversation_start
    from agent.models import Conversation
    from tenants.context import tenant_context
    from tenants.db import alias_for
    from tenants.selectors import tenant_by_slug

    tenant = tenant_by_slug(SLUG)
    assert tenant is not None
    alias = alias_for(tenant.pk)
    counts = {"statements": 0, "writes": 0}

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        counts["statements"] += 1
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            counts["writes"] += 1
        return execute(sql, params, many, context)

    def on_connect(sender: Any, connection: Any, **kwargs: Any) -> None:
        if connection.alias == alias and count not in connection.execute_wrappers:
            connection.execute_wrappers.append(count)

    connection_created.connect(on_connect)
    rng = random.Random(1)
    chats: list[tuple[ChatConsumer, list[str]]] = []
    for _ in range(conversations):
        # Only what _turn uses: the business and the conversation.
        chat = ChatConsumer.__new__(ChatConsumer)
        chat.tenant = tenant
        with tenant_context(tenant):
            chat.conversation = conversation_start(channel=Conversation.Channel.CHAT)
        chats.append((chat, []))

    def turn(n: int) -> None:
        chat, script = chats[n % conversations]
        if not script:
            script.extend(rng.choice(SCRIPTS))
        wrapper = connections[alias]
        if count not in wrapper.execute_wrappers:
            wrapper.execute_wrappers.append(count)
        chat._turn(fill(script.pop(0), rng, n % conversations))

    for n in range(warm_up):
        turn(n)
    counts.update(statements=0, writes=0)
    cpu, wall = time.process_time(), time.perf_counter()
    for n in range(warm_up, warm_up + turns):
        turn(n)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    say(f"{turns} turns in-process ({conversations} conversations, after {warm_up} warm-up "
        f"turns): CPU {1e3 * cpu / turns:.2f} ms per turn (wall {1e3 * wall / turns:.2f} ms); "
        f"SQL on the business's database {counts['statements'] / turns:.1f} statements per "
        f"turn, of which {counts['writes'] / turns:.1f} INSERT/UPDATE/DELETE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=75.0, help="steady state, seconds")
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds to connect everyone")
    parser.add_argument("--min-interval", type=float, default=1.0)
    parser.add_argument("--max-interval", type=float, default=3.0)
    parser.add_argument("--var-dir", help="reuse a migrated VAR_DIR (kept); default: fresh")
    parser.add_argument("--profile", type=int, default=0, help="py-spy seconds (0: none)")
    parser.add_argument("--profile-out", default="chat_load_profile.txt")
    parser.add_argument("--profile-format", default="raw", choices=("raw", "flamegraph",
                                                                   "speedscope"))
    parser.add_argument("--by-message", action="store_true", help="latency per message text")
    parser.add_argument("--in-process", type=int, default=0, metavar="TURNS",
                        help="measure CPU and SQL per turn in-process instead (no server)")
    args = parser.parse_args()
    if args.in_process:
        say(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"load average at start {os.getloadavg()[0]:.1f}")
        in_process(args.in_process)
        return

    if args.var_dir:
        var_dir, fresh = Path(args.var_dir), False
        var_dir.mkdir(parents=True, exist_ok=True)
    else:
        var_dir, fresh = Path(tempfile.mkdtemp(prefix="ss-bench-chat-")), True
    say(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"Django {django.get_version()}, SQLite {sqlite3.sqlite_version}; "
        f"load average at start {os.getloadavg()[0]:.1f}")
    env = server_env(var_dir)
    log_path = var_dir / "server.log"
    server = None
    try:
        started = time.monotonic()
        prepare(env)
        say(f"migrate + seed_demo: {time.monotonic() - started:.0f} s")
        server, url = start_server(env, log_path)
        say(f"daphne pid {server.pid} at {url}; {args.clients} clients over {args.ramp:.0f} s, "
            f"a message every {args.min_interval:g}-{args.max_interval:g} s each, "
            f"{args.duration:.0f} s measured")
        asyncio.run(load(args, url, server.pid))
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            errors = [line for line in log_path.read_text(errors="replace").splitlines()
                      if "Traceback" in line or " ERROR " in line or "Error" in line]
            say(f"server log: {len(errors)} error lines")
            for line in errors[:5]:
                say(f"  {line}")
        if fresh:
            shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
