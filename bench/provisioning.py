"""Provisioning a tenant (template copy) versus migrating a fresh database.

Run: ``.venv/bin/python -m bench.provisioning [--copies 50] [--fresh 7]``
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import time
import uuid

from bench.common import machine, say, start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=50)
    parser.add_argument("--fresh", type=int, default=7)
    args = parser.parse_args()

    start("provisioning")
    from django.db import connections

    from tenants.db import alias_for, template_db_path, tenant_db_path
    from tenants.provisioning import migrate_database, provision_database
    from tenants.services import tenant_create

    say(f"machine: {machine()}")
    say(f"template: {template_db_path().stat().st_size / 1024:.0f} KiB")

    copy_ms = []
    for _ in range(args.copies):
        began = time.perf_counter()
        provision_database(uuid.uuid4())
        copy_ms.append((time.perf_counter() - began) * 1000)

    signup_ms = []
    for n in range(args.copies):
        began = time.perf_counter()
        # No password: Argon2 hashing (~50 ms by design) is not provisioning.
        tenant_create(slug=f"bench-{n:03d}", name=f"Bench {n}", timezone="UTC",
                      owner_email=f"owner{n}@example.com")
        signup_ms.append((time.perf_counter() - began) * 1000)

    fresh_ms = []
    applied = 0
    for _ in range(args.fresh):
        tenant_id = uuid.uuid4()
        sqlite3.connect(tenant_db_path(tenant_id)).close()  # a new, empty file
        began = time.perf_counter()
        applied = migrate_database(alias_for(tenant_id))
        fresh_ms.append((time.perf_counter() - began) * 1000)
        connections.forget(alias_for(tenant_id))  # type: ignore[attr-defined]

    def line(label: str, values: list[float]) -> str:
        return (f"{label}: median {statistics.median(values):.1f} ms, "
                f"min {min(values):.1f}, max {max(values):.1f} (n={len(values)})")

    say(line("provision_database (template copy + checks)", copy_ms))
    say(line("tenant_create (rows + owner + copy, one transaction)", signup_ms))
    say(line(f"migrate_database on an empty file ({applied} migrations)", fresh_ms))
    say(f"ratio fresh migration / copy: "
        f"{statistics.median(fresh_ms) / statistics.median(copy_ms):.0f}x")


if __name__ == "__main__":
    main()
