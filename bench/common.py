"""Shared set-up for the benchmarks: a throwaway VAR_DIR, Django, bulk tenants."""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path


def start(name: str) -> Path:
    """Point Django at a fresh VAR_DIR (removed at exit), set it up, migrate the control plane."""
    var_dir = Path(tempfile.mkdtemp(prefix=f"ss-bench-{name}-"))
    atexit.register(shutil.rmtree, var_dir, ignore_errors=True)
    for key in ("DATABASE_URL", "TENANT_DB_DIR", "TENANT_DATABASE_URL", "REDIS_URL"):
        os.environ.pop(key, None)
    os.environ.update(
        {
            "VAR_DIR": str(var_dir),
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DEBUG": "false",
            "DJANGO_SECRET_KEY": "bench-only-" + "Qm7Zr2Xw9Tk4Vb8Np3Ls6Hd1Gf5Jc0Ya" * 2,
            "ALLOWED_HOSTS": "testserver,localhost",
            "SECURE_SSL_REDIRECT": "false",
            "STATIC_MANIFEST": "false",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    from tenants.provisioning import ensure_template

    call_command("migrate", verbosity=0)
    ensure_template()
    return var_dir


def machine() -> str:
    import platform

    import django

    return (
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"Django {django.get_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {platform.system()} {platform.release()}; "
        f"load average at start {os.getloadavg()[0]:.1f}"
    )


def checkpoint(path: Path) -> None:
    """Fold the WAL into the file so a plain file copy is complete."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def add_tenants(count: int, *, source: Path, first: int = 0) -> list[uuid.UUID]:
    """Bulk tenants: control-plane rows plus a file copy of ``source`` each (no owners)."""
    from tenants.db import tenant_db_path
    from tenants.models import Tenant

    tenants = [
        Tenant(slug=f"bench-{n:05d}", name=f"Bench {n}", timezone="UTC", plan="premium")
        for n in range(first, first + count)
    ]
    Tenant.objects.bulk_create(tenants, batch_size=500)
    for tenant in tenants:
        shutil.copyfile(source, tenant_db_path(tenant.id))
    return [tenant.id for tenant in tenants]


def reset_files(tenant_ids: Sequence[uuid.UUID], *, source: Path) -> None:
    from tenants.db import tenant_db_path

    for tenant_id in tenant_ids:
        path = tenant_db_path(tenant_id)
        for suffix in ("-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        shutil.copyfile(source, path)


def ms(values_ns: Sequence[float]) -> str:
    return f"{statistics.median(values_ns) / 1e6:.3f} ms"


def quantile_ms(values_ns: Sequence[float], q: float) -> float:
    ordered = sorted(values_ns)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


def say(line: str = "") -> None:
    print(line, flush=True)
    sys.stdout.flush()


def left_behind_copy() -> tuple[Path, list[str]]:
    """A tenant database one migration behind: booking's latest migration rolled back.

    This is what every tenant database looks like right after a deploy that
    ships a new booking migration. Returns the file and the migrations removed.
    """
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    from tenants.db import alias_for
    from tenants.provisioning import provision_database

    tenant_id = uuid.uuid4()
    path = provision_database(tenant_id)
    alias = alias_for(tenant_id)
    executor = MigrationExecutor(connections[alias])
    graph = executor.loader.graph
    leaf = next(node for node in graph.leaf_nodes() if node[0] == "booking")
    parents = sorted(p for p in graph.node_map[leaf].parents if p[0] == "booking")
    target = parents[-1] if parents else ("booking", None)
    plan = executor.migration_plan([target])
    executor.migrate([target], plan=plan)
    connections.forget(alias)  # type: ignore[attr-defined]
    checkpoint(path)
    return path, [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


EXTRA_MIGRATION = '''from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [("booking", "{leaf}")]

    operations = [
        migrations.AddField(
            model_name="businessprofile",
            name="bench_tagline",
            field=models.CharField(blank=True, default="", max_length=80),
        ),
    ]
'''


def ship_extra_booking_migration(var_dir: Path) -> str:
    """Make the code one booking migration ahead of every database (a typical AddField).

    Booking's migrations are copied into a throwaway package with one more
    migration on top, and MIGRATION_MODULES points booking at it. Processes
    forked afterwards (migrate_tenants' workers) see it too.
    """
    from django.conf import settings
    from django.db.migrations.loader import MigrationLoader

    import booking.migrations

    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    leaf = next(node for node in graph.leaf_nodes() if node[0] == "booking")
    package = var_dir / "bench_code" / "bench_booking_migrations"
    shutil.copytree(Path(booking.migrations.__file__).parent, package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    name = "9000_bench_tagline"
    (package / f"{name}.py").write_text(EXTRA_MIGRATION.format(leaf=leaf[1]))
    sys.path.insert(0, str(package.parent))
    settings.MIGRATION_MODULES = {"booking": "bench_booking_migrations"}
    return f"booking.{name}"
