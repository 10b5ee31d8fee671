"""``make run``: the ASGI server (HTTP + websockets) and a task worker, together.

In production these are separate processes (see the Dockerfile); locally one
command starts both and stops both on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import FrameType


def main() -> int:
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    python = sys.executable
    procs = [
        subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [python, "-m", "daphne", "-b", host, "-p", port, "smartscheduler.asgi:application"]
        ),
    ]
    worker = os.environ.get("TASK_WORKER_COMMAND", "db_worker --no-reload")
    if worker:
        procs.append(subprocess.Popen([python, "manage.py", *worker.split()]))  # noqa: S603

    def stop(signum: int, frame: FrameType | None) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    # When either process dies, stop the other: a server without its worker
    # would silently stop sending reminders.
    exit_code = 0
    while procs:
        pid, status = os.wait()
        for proc in list(procs):
            if proc.pid == pid:
                procs.remove(proc)
                exit_code = exit_code or os.waitstatus_to_exitcode(status)
                stop(signal.SIGTERM, None)
    return exit_code


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smartscheduler.settings")
    sys.exit(main())
