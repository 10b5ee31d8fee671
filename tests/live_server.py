"""The real ASGI server in a subprocess, for tests that need one.

The server runs with production settings (DEBUG off, secure cookies,
WhiteNoise) and its own throwaway data directory, so it never touches the test
database. It inherits an already-listening socket: no port race, and early
requests wait in the backlog instead of failing while it starts.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVER_START_TIMEOUT = 60.0


@dataclass
class LiveServer:
    url: str
    env: dict[str, str]
    var_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a management command against the live server's own databases."""
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO, env=self.env, check=True, capture_output=True, text=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def server_env(var_dir: Path, **overrides: str) -> dict[str, str]:
    """Production settings with a throwaway secret and data directory."""
    alphabet = string.ascii_letters + string.digits
    env = {
        key: value for key, value in os.environ.items()
        # The parent's settings must not leak in: the server reads only what we pass.
        if not key.startswith(("DJANGO_", "DATABASE_", "TENANT_", "REDIS_", "EMAIL_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="smartscheduler.settings",
        DJANGO_SECRET_KEY="".join(secrets.choice(alphabet) for _ in range(60)),
        DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",
        STATIC_MANIFEST="false",
        VAR_DIR=str(var_dir),
        STATIC_ROOT=str(var_dir / "static"),
        AGENT_PROVIDER="offline",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def listening_socket(backlog: int = 128) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def wait_until_healthy(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    # The socket already listens, so this request blocks in the backlog until
    # the server accepts it; no polling loop is needed.
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=SERVER_START_TIMEOUT) as response:
            if response.status == 200:
                return
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        failure = repr(exc)
    else:
        failure = f"status {response.status}"
    server.kill()
    server.wait()
    raise RuntimeError(
        f"live server did not become healthy ({failure}):\n{log.read_text(errors='replace')}"
    )


def prepare(env: dict[str, str], *, collectstatic: bool = False) -> None:
    """Create the control-plane tables (and static files) the server will use.

    The tables come from the models, as in the test settings: rendering
    dj-stripe's long migration history costs a minute or more per server. The
    server itself then runs with the production settings on them.
    """
    test_env = dict(env, DJANGO_SETTINGS_MODULE="smartscheduler.settings_test")
    steps = [["migrate", "--run-syncdb"]]
    if env.get("DATABASE_URL", "").startswith("postgres"):
        # Django creates the tables of apps without migrations (dj-stripe here)
        # before it runs any migration; PostgreSQL checks their foreign keys to
        # auth_user at once, so auth must exist first.
        steps.insert(0, ["migrate", "auth"])
    for step in steps:
        subprocess.run([sys.executable, "manage.py", *step, "--verbosity", "0"],
                       cwd=REPO, env=test_env, check=True)
    if collectstatic:
        subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput",
                        "--verbosity", "0"], cwd=REPO, env=env, check=True)


def start_daphne(sock: socket.socket, env: dict[str, str], log_path: Path
                 ) -> subprocess.Popen[bytes]:
    """Start daphne on an inherited listening socket; the caller closes its copy."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            # -v 0: no access log of daphne's own; it would print manage-link
            # tokens in paths (the app logs each request without them).
            [sys.executable, "-m", "daphne", "-v", "0", "--fd", str(sock.fileno()),
             "smartscheduler.asgi:application"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, pass_fds=[sock.fileno()],
        )


def stop(server: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@contextmanager
def live_server(prefix: str = "ss-live-", *, collectstatic: bool = False,
                **env_overrides: str) -> Iterator[LiveServer]:
    """A migrated server on a free port; ``PUBLIC_BASE_URL`` points at it."""
    var_dir = Path(tempfile.mkdtemp(prefix=prefix))
    sock = listening_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = server_env(var_dir, PUBLIC_BASE_URL=url, **env_overrides)
    log_path = var_dir / "server.log"
    server: subprocess.Popen[bytes] | None = None
    try:
        prepare(env, collectstatic=collectstatic)
        server = start_daphne(sock, env, log_path)
        sock.close()  # the server holds its own copy
        wait_until_healthy(url, server, log_path)
        yield LiveServer(url=url, env=env, var_dir=var_dir, log_path=log_path, process=server)
    finally:
        sock.close()
        if server is not None:
            stop(server)
        shutil.rmtree(var_dir, ignore_errors=True)
