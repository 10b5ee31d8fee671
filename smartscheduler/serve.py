"""``make run``: the ASGI server (HTTP + websockets) and a task worker, together.

In production these are separate processes (see the Dockerfile); locally one
command starts both and stops both on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from types import FrameType

# The tasks' queue is in Redis when REDIS_URL is set (see TASKS in settings);
# the scheduler moves delayed jobs, such as reminders, onto the queue when due.
RQ_WORKER_COMMAND = "rqworker --with-scheduler --job-class django_tasks_rq.Job default"
DB_WORKER_COMMAND = "db_worker --no-reload"


def default_worker_command(environ: Mapping[str, str]) -> str:
    in_redis = environ.get("REDIS_URL") or environ.get("REDIS_URL_FILE")
    return RQ_WORKER_COMMAND if in_redis else DB_WORKER_COMMAND


def main() -> int:
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    python = sys.executable
    procs = [
        subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            # -v 0: no daphne access log (it prints full paths, manage-link tokens
            # included); the app logs each request by its URL pattern instead.
            [python, "-m", "daphne", "-v", "0", "-b", host, "-p", port,
             "smartscheduler.asgi:application"]
        ),
    ]
    worker = os.environ.get("TASK_WORKER_COMMAND", default_worker_command(os.environ))
    if worker:
        # The worker also runs the daily backup of every business: queue it
        # (nothing happens when it is queued already). A failure is printed and
        # the server still starts; `manage.py backup_all_tenants --schedule` retries.
        subprocess.run(  # noqa: S603 - fixed argv, no shell
            [python, "manage.py", "backup_all_tenants", "--schedule"], check=False
        )
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
