"""Real-browser tests: Debian's chromium driven by Playwright against the real ASGI server.

The server runs as a subprocess with production settings (DEBUG off, secure
cookies, WhiteNoise) and its own throwaway data directory, so these fixtures
never touch the test database and need no ``db`` fixture. Chromium treats
http://127.0.0.1 as a secure context, so the Secure session and CSRF cookies of
the production settings work over plain HTTP; no settings override is needed.

One server serves the whole session: each test uses its own business slugs and
emails. ``e2e_server.manage(...)`` runs a management command (seed data, a
superuser) against the server's databases.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import string
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path(os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_TIMEOUT = 60.0


@dataclass
class E2EServer:
    url: str
    env: dict[str, str]
    var_dir: Path
    log_path: Path

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a management command against the live server's own databases."""
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO, env=self.env, check=True, capture_output=True, text=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _server_env(var_dir: Path) -> dict[str, str]:
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
    return env


def _listening_socket() -> socket.socket:
    # The server inherits an already-listening socket: no port race, and early
    # requests wait in the backlog instead of failing while it starts.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _wait_until_healthy(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
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


@pytest.fixture(scope="session")
def e2e_server() -> Iterator[E2EServer]:
    var_dir = Path(tempfile.mkdtemp(prefix="ss-e2e-"))
    env = _server_env(var_dir)
    log_path = var_dir / "server.log"
    for command in (["migrate", "--verbosity", "0"],
                    ["collectstatic", "--noinput", "--verbosity", "0"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=REPO, env=env, check=True)

    sock = _listening_socket()
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "daphne", "--fd", str(sock.fileno()),
             "smartscheduler.asgi:application"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, pass_fds=[sock.fileno()],
        )
    sock.close()  # the server holds its own copy
    try:
        _wait_until_healthy(url, server, log_path)
        yield E2EServer(url=url, env=env, var_dir=var_dir, log_path=log_path)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(var_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`make browser`).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Debian's chromium, never a downloaded one (`playwright install` is not used).
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any, e2e_server: E2EServer, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context (no cookies) on the live server, per test."""
    context = browser.new_context(base_url=e2e_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []

    def on_response(response: Any) -> None:
        # Pages may answer 4xx on purpose (a notice, a refusal); their assets may not.
        if response.status >= 400 and response.request.resource_type != "document":
            errors.append(f"{response.status} {response.url}")

    def on_console(message: Any) -> None:
        # Failed loads are reported above, with their URL; the rest (script errors,
        # refused by a content security policy) are reported here.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", on_response)
    page.on("console", on_console)
    try:
        yield page
        call_report = getattr(request.node, "rep_call", None)
        if call_report is not None and call_report.failed:
            _save_artifacts(request.node.nodeid, page, e2e_server)
        else:
            # A script error or a refused resource is a bug even when the test passed.
            assert not errors, f"browser reported errors: {errors}"
    finally:
        context.close()


def _save_artifacts(nodeid: str, page: Any, server: E2EServer) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in nodeid)
    try:
        page.screenshot(path=str(ARTIFACTS / f"{stem}.png"), full_page=True)
        (ARTIFACTS / f"{stem}.html").write_text(page.content())
    except Exception as exc:  # noqa: BLE001 - artifacts are best effort
        (ARTIFACTS / f"{stem}.error.txt").write_text(repr(exc))
    (ARTIFACTS / f"{stem}.server.log").write_text(server.log())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Keep each phase's report on the test item so fixtures can see a failure.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
