"""Real-browser tests: Debian's chromium driven by Playwright against the real ASGI server.

The server runs as a subprocess with production settings (DEBUG off, secure
cookies, WhiteNoise) and its own throwaway data directory, so these fixtures
never touch the test database and need no ``db`` fixture. Chromium treats
http://127.0.0.1 as a secure context, so the Secure session and CSRF cookies of
the production settings work over plain HTTP; no settings override is needed.

One server serves the whole session (and then one scale-out topology, see
``e2e_server``): each test uses its own business slugs and emails.
``e2e_server.manage(...)`` runs a management command (seed data, a superuser)
against the server's databases.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live_server import REPO, LiveServer, live_server
from tests.scaleout.topology import scaleout_topology

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


E2EServer = LiveServer


@pytest.fixture(scope="session", params=["embedded", "scaleout"])
def e2e_server(request: pytest.FixtureRequest) -> Iterator[E2EServer]:
    """Every browser test runs twice: on the embedded default (one process, SQLite,
    in-memory channel layer and cache, tasks in the database) and on the scale-out
    topology (two processes, PostgreSQL for the control plane and every business,
    Redis, an RQ worker), through process A."""
    if request.param == "embedded":
        with live_server("ss-e2e-", collectstatic=True) as server:
            yield server
    else:
        with scaleout_topology("ss-e2e-scaleout-", collectstatic=True,
                               postgres_tenants=True) as topology:
            yield topology.a


# Per module, not per session: Playwright's sync API leaves its event loop set
# as the thread's running loop while it is open, and every async test that runs
# after it (pytest-asyncio) would then fail to start its own.
@pytest.fixture(scope="module")
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
