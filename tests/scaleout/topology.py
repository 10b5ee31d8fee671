"""The scale-out topology on this machine: two daphne processes, one RQ worker,
PostgreSQL for the control plane and Redis for the channel layer, the cache and
the task queue. The tenant databases are SQLite files in one directory that all
three processes share, as the compose stack shares a volume, or PostgreSQL
databases (``postgres_tenants``).

Each topology gets its own PostgreSQL database (random name, dropped at the
end) and its own Redis database number (claimed with a key in Redis database
0, flushed before and after), so topologies of parallel test runs never meet.

The control plane is cloned from a PostgreSQL template database migrated once
per set of migrations: replaying dj-stripe's migration history costs over a
minute, cloning a second.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import redis
from psycopg import sql

from smartscheduler.serve import RQ_WORKER_COMMAND
from tests.live_server import (
    REPO,
    LiveServer,
    listening_socket,
    prepare,
    server_env,
    start_daphne,
    stop,
    wait_until_healthy,
)

POSTGRES = "postgresql://postgres@127.0.0.1:5432/{name}"
REDIS = "redis://127.0.0.1:6379/{db}"
TEMPLATE_PREFIX = "ss_control_template_"
# Any fixed number: serialises building the template across parallel test runs.
TEMPLATE_LOCK = 0x5C5C_0001
# The very command `make run`, compose and ECS start.
WORKER_COMMAND = RQ_WORKER_COMMAND.split()
WORKER_START_TIMEOUT = 60.0


@dataclass
class Topology:
    """Process A and process B serve the same data; ``manage`` runs commands against it."""

    a: LiveServer
    b: LiveServer
    worker: subprocess.Popen[bytes]
    env: dict[str, str]
    var_dir: Path
    database: str
    redis_url: str
    worker_log: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def servers(self) -> tuple[LiveServer, LiveServer]:
        return self.a, self.b

    def manage(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO, env=self.env, check=True,
            capture_output=True, text=True, input=input,
        )

    def logs(self) -> str:
        parts = [f"--- {name} ---\n{server.log()}" for name, server in (("A", self.a),
                                                                          ("B", self.b))]
        parts.append(f"--- worker ---\n{self.worker_log.read_text(errors='replace')}")
        return "\n".join(parts)


def require_services() -> None:
    """PostgreSQL and Redis must answer (``make test`` starts them when they are down)."""
    try:
        redis.Redis.from_url(REDIS.format(db=0), socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not running on 127.0.0.1:6379 ({exc}); `make test` starts it.")
    try:
        psycopg.connect(POSTGRES.format(name="postgres"), connect_timeout=3).close()
    except psycopg.Error as exc:
        pytest.fail(f"PostgreSQL is not running on 127.0.0.1:5432 ({exc}); "
                    "`make test` starts it.")


# --- Redis -----------------------------------------------------------------------------


@contextmanager
def redis_database() -> Iterator[str]:
    """A Redis database number nobody else uses while the block runs, empty at both ends."""
    claims = redis.Redis.from_url(REDIS.format(db=0))
    token = secrets.token_hex(8)
    # Database 0 holds the claims; 1-15 are handed out.
    for db in range(1, 16):
        key = f"smartscheduler-tests:redis-db:{db}"
        if claims.set(key, token, nx=True, ex=3600):
            break
    else:
        pytest.fail("every Redis database 1-15 is claimed by another test run")
    url = REDIS.format(db=db)
    own = redis.Redis.from_url(url)
    own.flushdb()
    try:
        yield url
    finally:
        own.flushdb()
        if claims.get(key) == token.encode():
            claims.delete(key)


# --- PostgreSQL ------------------------------------------------------------------------


def _migrations_fingerprint() -> str:
    """Changes whenever a migration or a pinned dependency (and so its migrations) does."""
    digest = hashlib.sha256((REPO / "requirements.txt").read_bytes())
    for path in sorted(REPO.glob("*/migrations/*.py")):
        digest.update(str(path.relative_to(REPO)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _admin() -> psycopg.Connection:
    return psycopg.connect(POSTGRES.format(name="postgres"), autocommit=True)


def _exists(conn: psycopg.Connection, name: str) -> bool:
    found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    return found is not None


def control_plane_template(*, clone_to: str) -> str:
    """Clone the migrated template of this set of migrations (built when missing)."""
    template = TEMPLATE_PREFIX + _migrations_fingerprint()
    with _admin() as conn:
        # Held while cloning too: a run with other migrations may drop this template.
        conn.execute("SELECT pg_advisory_lock(%s)", [TEMPLATE_LOCK])
        try:
            if not _exists(conn, template):
                _build_template(conn, template)
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}")
                         .format(sql.Identifier(clone_to), sql.Identifier(template)))
            # Templates of older migrations are of no further use.
            stale = conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s AND datname <> %s",
                [TEMPLATE_PREFIX + "%", template],
            ).fetchall()
            for (name,) in stale:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                             .format(sql.Identifier(name)))
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [TEMPLATE_LOCK])
    return template


def _build_template(conn: psycopg.Connection, template: str) -> None:
    building = f"{template}_building"
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                 .format(sql.Identifier(building)))
    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(building)))
    var_dir = Path(tempfile.mkdtemp(prefix="ss-template-"))
    try:
        prepare(server_env(var_dir, DATABASE_URL=POSTGRES.format(name=building)))
    except BaseException:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                     .format(sql.Identifier(building)))
        raise
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)
    # Renamed only once complete: a half-migrated template is never cloned.
    conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}")
                 .format(sql.Identifier(building), sql.Identifier(template)))


@contextmanager
def control_plane_database() -> Iterator[str]:
    """A fresh, migrated control-plane database; dropped afterwards."""
    name = f"ss_scaleout_{secrets.token_hex(6)}"
    control_plane_template(clone_to=name)
    try:
        yield POSTGRES.format(name=name)
    finally:
        with _admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


# --- the processes -------------------------------------------------------------------------


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "manage.py", *WORKER_COMMAND], cwd=REPO, env=env,
            stdout=log, stderr=subprocess.STDOUT,
        )


def wait_for_worker(redis_url: str, worker: subprocess.Popen[bytes], log_path: Path) -> None:
    """Until the worker has registered itself in Redis (it then listens on the queue)."""
    from rq import Worker

    connection = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + WORKER_START_TIMEOUT
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            break
        if Worker.all(connection=connection):
            return
        time.sleep(0.2)
    stop(worker)
    pytest.fail(f"the RQ worker did not start:\n{log_path.read_text(errors='replace')}")


@contextmanager
def tenant_databases() -> Iterator[str]:
    """A TENANT_DATABASE_URL prefix of its own; every database under it is dropped after."""
    prefix = f"sst{secrets.token_hex(4)}"
    try:
        yield POSTGRES.format(name=prefix)
    finally:
        with _admin() as conn:
            names = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                 [prefix + "\\_%"]).fetchall()
            for (name,) in names:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                             .format(sql.Identifier(name)))


@contextmanager
def scaleout_topology(prefix: str = "ss-scaleout-", *, collectstatic: bool = False,
                      postgres_tenants: bool = False, **overrides: str) -> Iterator[Topology]:
    """The topology; ``postgres_tenants`` puts each business in a PostgreSQL database
    of its own (TENANT_DATABASE_URL) instead of a SQLite file."""
    require_services()
    with ExitStack() as stack:
        redis_url = stack.enter_context(redis_database())
        database_url = stack.enter_context(control_plane_database())
        if postgres_tenants:
            overrides = {**overrides, "TENANT_DATABASE_URL": stack.enter_context(
                tenant_databases())}
        var_dir = Path(tempfile.mkdtemp(prefix=prefix))
        stack.callback(shutil.rmtree, var_dir, True)
        socks = [listening_socket(), listening_socket()]
        for sock in socks:
            stack.callback(sock.close)
        urls = [f"http://127.0.0.1:{sock.getsockname()[1]}" for sock in socks]
        shared = dict(DATABASE_URL=database_url, REDIS_URL=redis_url,
                      TENANT_DB_DIR=str(var_dir / "tenants"), **overrides)
        env = server_env(var_dir, PUBLIC_BASE_URL=urls[0], **shared)
        if collectstatic:
            subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput",
                            "--verbosity", "0"], cwd=REPO, env=env, check=True)
        worker_log = var_dir / "worker.log"
        worker = start_worker(env, worker_log)
        stack.callback(stop, worker)
        servers: list[LiveServer] = []
        for name, sock, url in zip("ab", socks, urls, strict=True):
            # Each process's links point at itself, as behind one address they would at it.
            server_env_ = dict(env, PUBLIC_BASE_URL=url)
            log_path = var_dir / f"server-{name}.log"
            process = start_daphne(sock, server_env_, log_path)
            stack.callback(stop, process)
            sock.close()
            servers.append(LiveServer(url=url, env=server_env_, var_dir=var_dir,
                                      log_path=log_path, process=process))
        for server in servers:
            assert server.process is not None
            wait_until_healthy(server.url, server.process, server.log_path)
        wait_for_worker(redis_url, worker, worker_log)
        yield Topology(a=servers[0], b=servers[1], worker=worker, env=env, var_dir=var_dir,
                       database=database_url, redis_url=redis_url, worker_log=worker_log)


