"""Live servers for the security tests: quick to prepare, and restartable after a crash.

``tests.live_server`` prepares the control plane with ``migrate``, which renders
dj-stripe's long migration history (a minute or more on a busy machine). Here
the tables are created from the models, as the test settings do, and the server
then runs with production settings on them. The listening socket stays open in
the test process for the server's whole life, so a killed server can be
restarted on the same port and clients queue in the backlog meanwhile.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.booking.conftest import base_setup
from tests.live_server import (
    REPO,
    LiveServer,
    listening_socket,
    server_env,
    start_daphne,
    stop,
    wait_until_healthy,
)

ALL_WEEK = {day: [["09:00", "17:00"]]
            for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@dataclass
class RestartableServer:
    live: LiveServer
    sock: socket.socket

    def kill(self) -> None:
        assert self.live.process is not None
        stop(self.live.process, kill=True)

    def restart(self) -> None:
        self.live.process = start_daphne(self.sock, self.live.env, self.live.log_path)
        wait_until_healthy(self.live.url, self.live.process, self.live.log_path)


@contextmanager
def restartable_server(prefix: str, **env_overrides: str) -> Iterator[RestartableServer]:
    var_dir = Path(tempfile.mkdtemp(prefix=prefix))
    sock = listening_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = server_env(var_dir, PUBLIC_BASE_URL=url, **env_overrides)
    log_path = var_dir / "server.log"
    server = RestartableServer(LiveServer(url=url, env=env, var_dir=var_dir, log_path=log_path),
                               sock)
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--run-syncdb", "--verbosity", "0"],
            cwd=REPO, env=dict(env, DJANGO_SETTINGS_MODULE="smartscheduler.settings_test"),
            check=True,
        )
        server.restart()
        yield server
    finally:
        if server.live.process is not None:
            stop(server.live.process)
        sock.close()
        shutil.rmtree(var_dir, ignore_errors=True)


def bookable_business(live: LiveServer, slug: str, *, timezone: str = "America/New_York",
                      plan: str = "premium") -> None:
    """A business open every day 09:00-17:00 with the booking tests' services and staff."""
    live.manage("create_tenant", "--slug", slug, "--name", slug.title(), "--timezone", timezone,
                "--owner-email", f"owner@{slug}.example.com", "--plan", plan)
    setup: dict[str, Any] = base_setup()
    setup["name"] = slug.title()
    setup["timezone"] = timezone
    setup["closures"] = []
    for member in setup["staff"]:
        member["hours"] = ALL_WEEK
    config = live.var_dir / f"{slug}.json"
    config.write_text(json.dumps(setup))
    live.manage("tenant_config", slug, "--import", str(config))


def report(live: LiveServer, slug: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(live.manage("tenant_report", slug, "--json").stdout)
    return result


def availability_query(service: int, first: date, days: int = 30) -> str:
    return urlencode({"service": service, "start": first.isoformat(),
                      "end": (first + timedelta(days=days)).isoformat()})
