"""Request cost against the number of provisioned tenants (1, 1,000, 10,000).

Three installations side by side, with 1, 1,000 and 10,000 provisioned tenants
(each its own control-plane file and tenant directory). Two requests go through
Django's WSGI handler in-process (middleware, URL resolution, the
request_started/request_finished signals and their connection scans included;
no network): ``GET /healthz`` (control plane only) and
``GET /b/<slug>/bench/profile``, which resolves the tenant from its slug and
reads its BusinessProfile from the tenant's own SQLite file. The installations
take turns in short blocks, so background load falls on all three alike, and
tenant requests rotate over every provisioned tenant: by the end this thread
has used all 10,000 tenant databases. Finally the naive set-up: every tenant
alias in ``connections.settings`` under Django's stock connection handler.

Run: ``.venv/bin/python -m bench.request_overhead [--requests 2000]``
"""

from __future__ import annotations

import argparse
import gc
import io
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import add_tenants, checkpoint, machine, quantile_ms, say, start

TIERS = (1, 1_000, 10_000)


def environ_for(path: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": "testserver", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver", "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


Samples = tuple[list[int], list[int]]  # (wall ns, CPU ns) per request


def timed_requests(handler: Callable[..., Iterable[bytes]], paths: Iterable[str]) -> Samples:
    wall: list[int] = []
    cpu: list[int] = []
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        statuses.append(status)

    for path in paths:
        environ = environ_for(path)
        began, began_cpu = time.perf_counter_ns(), time.process_time_ns()
        response = handler(environ, start_response)
        for _ in response:
            pass
        response.close()  # type: ignore[attr-defined]  # fires request_finished
        cpu.append(time.process_time_ns() - began_cpu)
        wall.append(time.perf_counter_ns() - began)
        if not statuses[-1].startswith("200"):
            raise SystemExit(f"{path} answered {statuses[-1]}")
    return wall, cpu


def timed_scans(count: int) -> Samples:
    """What request_started does with the connections: two scans of them."""
    from django.db import close_old_connections, reset_queries

    wall: list[int] = []
    cpu: list[int] = []
    for _ in range(count):
        began, began_cpu = time.perf_counter_ns(), time.process_time_ns()
        reset_queries()
        close_old_connections()
        cpu.append(time.process_time_ns() - began_cpu)
        wall.append(time.perf_counter_ns() - began)
    return wall, cpu


def seed_database(var_dir: Path) -> Path:
    """A provisioned tenant database holding a BusinessProfile row, to copy for every tenant."""
    from django.db import connections

    from booking.models import BusinessProfile
    from tenants.context import tenant_context
    from tenants.db import alias_for
    from tenants.models import Tenant
    from tenants.provisioning import provision_database

    tenant = Tenant(id=uuid.uuid4(), slug="seed", name="Seed", timezone="UTC")
    path = provision_database(tenant.id)
    with tenant_context(tenant):
        BusinessProfile.objects.create(display_name="Bench Dental")
    connections.forget(alias_for(tenant.id))  # type: ignore[attr-defined]
    checkpoint(path)  # stays in WAL mode, like a tenant file that has been used
    seed = var_dir / "seed.sqlite3"
    shutil.move(path, seed)
    return seed


@dataclass
class Installation:
    tenants: int
    control: Path
    tenant_dir: Path
    tenant_ids: list[uuid.UUID] = field(default_factory=list)
    next_tenant: int = 0
    health: Samples = field(default_factory=lambda: ([], []))
    tenant_requests: Samples = field(default_factory=lambda: ([], []))

    def use(self) -> None:
        from django.conf import settings
        from django.db import connections

        connections.close_all()
        connections["default"].settings_dict["NAME"] = str(self.control)
        settings.TENANT_DB_DIR = self.tenant_dir

    def tenant_paths(self, count: int) -> list[str]:
        paths = [f"/b/bench-{(self.next_tenant + i) % self.tenants:05d}/bench/profile"
                 for i in range(count)]
        self.next_tenant += count
        return paths


def extend(into: Samples, got: Samples) -> None:
    into[0].extend(got[0])
    into[1].extend(got[1])


def summary(label: str, samples: Samples) -> dict[str, Any]:
    wall, cpu = samples
    row = {
        "label": label,
        "cpu_ms": statistics.median(cpu) / 1e6,
        "wall_ms": statistics.median(wall) / 1e6,
        "wall_p90_ms": quantile_ms(wall, 0.9),
        "n": len(wall),
    }
    say(f"  {label:<56} CPU median {row['cpu_ms']:.3f} ms | wall median "
        f"{row['wall_ms']:.3f} ms, p90 {row['wall_p90_ms']:.3f} ms (n={row['n']})")
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--block", type=int, default=250, help="tenant requests per turn")
    parser.add_argument("--naive-requests", type=int, default=100)
    args = parser.parse_args()

    var_dir = start("requests")
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connections
    from django.db.utils import ConnectionHandler

    from tenants.db import alias_for, settings_for_alias

    say(f"machine: {machine()}")
    seed = seed_database(var_dir)
    connections.close_all()
    migrated_control = Path(connections["default"].settings_dict["NAME"])
    installations = []
    for tenants in TIERS:
        inst = Installation(tenants, var_dir / f"control-{tenants}.sqlite3",
                            var_dir / f"tenants-{tenants}")
        inst.tenant_dir.mkdir()
        checkpoint(migrated_control)
        shutil.copyfile(migrated_control, inst.control)
        inst.use()
        inst.tenant_ids = add_tenants(tenants, source=seed)
        installations.append(inst)
    say(f"provisioned: {', '.join(str(i.tenants) for i in installations)} tenants")

    handler = WSGIHandler()
    for inst in installations:  # warm-up
        inst.use()
        timed_requests(handler, ["/healthz"] * 300)
        timed_requests(handler, inst.tenant_paths(300))
        inst.next_tenant = 0
    gc.collect()
    for _ in range(args.rounds):
        for inst in installations:
            inst.use()
            extend(inst.health, timed_requests(handler, ["/healthz"] * (args.block // 2)))
            extend(inst.tenant_requests, timed_requests(handler, inst.tenant_paths(args.block)))

    rows: dict[str, dict[str, Any]] = {}
    for inst in installations:
        say(f"{inst.tenants} tenants provisioned "
            f"({min(inst.next_tenant, inst.tenants)} used by this thread):")
        rows[f"health-{inst.tenants}"] = summary("GET /healthz", inst.health)
        rows[f"tenant-{inst.tenants}"] = summary(
            "GET /b/<slug>/bench/profile", inst.tenant_requests
        )
    held = [c.alias for c in connections.all(initialized_only=True) if c.alias != "default"]
    say(f"tenant connection wrappers this thread holds after 10,000 tenants: {len(held)}")
    rows["scan"] = summary("request_started's scans (reset_queries + close_old_connections)",
                           timed_scans(10_000))

    # The naive set-up: every tenant alias in connections.settings, Django's own handler.
    big = installations[-1]
    big.use()
    say("naive: 10,000 aliases in connections.settings, stock ConnectionHandler")
    naive_settings = dict(connections.settings)
    for tenant_id in big.tenant_ids:
        naive_settings[alias_for(tenant_id)] = settings_for_alias(alias_for(tenant_id))
    connections.__class__ = ConnectionHandler
    connections.__dict__["settings"] = naive_settings
    n = args.naive_requests
    say(" configured, not used by this thread yet:")
    rows["naive-fresh-scan"] = summary("request_started's scans", timed_scans(n))
    rows["naive-fresh-health"] = summary("GET /healthz", timed_requests(handler, ["/healthz"] * n))
    say(" after this thread has served every tenant (Django never drops a wrapper):")
    for tenant_id in big.tenant_ids:
        connections[alias_for(tenant_id)]
    rows["naive-scan"] = summary("request_started's scans", timed_scans(n))
    rows["naive-health"] = summary("GET /healthz", timed_requests(handler, ["/healthz"] * n))
    paths = big.tenant_paths(n)
    rows["naive-tenant"] = summary("GET /b/<slug>/bench/profile", timed_requests(handler, paths))
    assert big.tenant_dir == settings.TENANT_DB_DIR

    say("")
    for kind in ("wall_ms", "cpu_ms"):
        added_tenant = rows["tenant-10000"][kind] - rows["tenant-1"][kind]
        added_health = rows["health-10000"][kind] - rows["health-1"][kind]
        added_naive = rows["naive-tenant"][kind] - rows["tenant-1"][kind]
        say(f"{kind[:-3]}: added at 10,000 vs 1 tenant: tenant request {added_tenant:+.3f} ms, "
            f"healthz {added_health:+.3f} ms (goal <= 0.5 ms); naive set-up at 10,000: "
            f"{added_naive:+.3f} ms ({rows['naive-tenant'][kind] / rows['tenant-1'][kind]:.0f}x)")


if __name__ == "__main__":
    main()
