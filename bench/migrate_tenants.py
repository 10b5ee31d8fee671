"""``migrate_tenants`` on 1,000 tenant databases: nothing to do, one new migration each.

"One new migration" is measured twice: a typical one (an AddField on top of
booking's migrations, shipped through a throwaway migration package) and the
heaviest single migration there is, booking's whole initial schema (every
database has it rolled back).

Run: ``.venv/bin/python -m bench.migrate_tenants [--tenants 1000] [--runs 3] [--parallel 2]``
"""

from __future__ import annotations

import argparse
import io
import shutil
import sqlite3
import statistics
import time
from pathlib import Path
from unittest import mock

from bench.common import (
    add_tenants,
    left_behind_copy,
    machine,
    reset_files,
    say,
    ship_extra_booking_migration,
    start,
)


def schema(path: Path) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return (
            conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall(),
            conn.execute("SELECT app, name FROM django_migrations ORDER BY app, name").fetchall(),
        )
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()

    var_dir = start("migrate")
    from django.core.management import call_command

    from tenants import migrations_runner
    from tenants.db import alias_for, template_db_path, tenant_db_path
    from tenants.provisioning import migrate_database, pending_migrations

    say(f"machine: {machine()}")
    current = var_dir / "current.sqlite3"
    shutil.copyfile(template_db_path(), current)
    tenant_ids = add_tenants(args.tenants, source=current)
    behind, removed = left_behind_copy()
    say(f"{args.tenants} tenants")

    def run(label: str, *, parallel: int, source: Path | None = None, runs: int = 0) -> None:
        seconds = []
        for _ in range(runs or args.runs):
            if source is not None:
                reset_files(tenant_ids, source=source)
            out = io.StringIO()
            began = time.perf_counter()
            call_command("migrate_tenants", parallel=parallel, stdout=out)
            seconds.append(time.perf_counter() - began)
            summary = out.getvalue().strip().splitlines()[-1]
        say(f"{label} --parallel {parallel}: median {statistics.median(seconds):.2f} s "
            f"(runs: {', '.join(f'{s:.2f}' for s in seconds)}) | {summary}")

    def check() -> None:
        template = schema(template_db_path())
        sample = tenant_ids[:: max(1, args.tenants // 50)]
        behind = [t for t in sample if pending_migrations(alias_for(t))]
        different = [t for t in sample if schema(tenant_db_path(t)) != template]
        say(f"  {len(sample)} sampled tenants: {len(behind)} still behind, "
            f"{len(different)} with a schema or history different from the template's")

    run("nothing to migrate", parallel=args.parallel)
    run("nothing to migrate", parallel=1)
    run(f"whole initial schema {removed}", parallel=args.parallel, source=behind)
    check()
    extra = ship_extra_booking_migration(var_dir)
    run(f"one new migration ({extra}, AddField)", parallel=args.parallel, source=current)
    check()
    # For comparison: Django's executor from scratch for every tenant (no state replay).
    with mock.patch.object(migrations_runner, "migrate_tenant_database", migrate_database):
        run(f"same, {extra} without the state replay", parallel=args.parallel,
            source=current, runs=1)
    check()


if __name__ == "__main__":
    main()
