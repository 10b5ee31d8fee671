"""Delayed tasks in Redis are filed so that RQ never starts them early."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import django_rq
from rq.registry import ScheduledJobRegistry

from booking.tasks import send_notification
from tests.scaleout.topology import redis_database, require_services


def _filed_at(settings: Any, run_after: datetime) -> datetime:
    require_services()
    with redis_database() as url:
        settings.RQ_QUEUES = {"default": {"URL": url}}
        settings.TASKS = {"default": {"BACKEND": "smartscheduler.rq_tasks.RQBackend",
                                      "QUEUES": ["default"]}}
        result = send_notification.using(run_after=run_after).enqueue(str(uuid.uuid4()), 1)
        registry = ScheduledJobRegistry(queue=django_rq.get_queue("default"))
        filed: datetime = registry.get_scheduled_time(result.id)
        return filed


def test_a_time_within_a_second_is_filed_under_the_next_second(settings: Any) -> None:
    # RQ files whole seconds and releases a job once its second begins: filed
    # under 12:00:00 this reminder would start up to 0.4 s early and be dropped.
    due = datetime(2030, 1, 1, 12, 0, 0, 400_000, tzinfo=UTC)
    assert _filed_at(settings, due) == datetime(2030, 1, 1, 12, 0, 1, tzinfo=UTC)


def test_a_whole_second_is_filed_as_it_is(settings: Any) -> None:
    due = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert _filed_at(settings, due) == due
