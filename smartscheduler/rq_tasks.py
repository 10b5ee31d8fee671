"""The task backend used when REDIS_URL is set: django-tasks-rq, with delayed
jobs that never start before their time.

RQ files a delayed job under its time in whole seconds, truncated, and its
scheduler releases it once that second has begun: a job due at 12:00:00.400
may start at 12:00:00.010. A task that checks whether its moment has come (a
reminder, a waitlist offer's expiry) then finds itself early, does nothing,
and is never run again. Rounding the time up to the next whole second keeps
the promise of ``run_after``: not before.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django_tasks.base import Task, TaskResult
from django_tasks_rq import RQBackend as _RQBackend


class RQBackend(_RQBackend):
    def enqueue(self, task: Task[Any, Any], args: Any, kwargs: Any) -> TaskResult[Any]:
        run_after = task.run_after
        if run_after is not None and run_after.microsecond:
            task = task.using(run_after=run_after.replace(microsecond=0) + timedelta(seconds=1))
        return super().enqueue(task, args, kwargs)
