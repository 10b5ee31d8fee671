"""REDIS_URL moves the task queue into Redis and picks the RQ worker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from smartscheduler.serve import DB_WORKER_COMMAND, RQ_WORKER_COMMAND, default_worker_command
from tests.live_server import REPO, server_env

READ_SETTINGS = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({"backend": settings.TASKS["default"]["BACKEND"],
                  "queue": settings.RQ_QUEUES["default"]["URL"],
                  "cache": settings.CACHES["default"]["BACKEND"],
                  "layer": settings.CHANNEL_LAYERS["default"]["BACKEND"]}))
"""

CHANNEL_LAYER_POOL = """
import json, django
django.setup()
from channels.layers import get_channel_layer
from channels_redis.utils import create_pool
layer = get_channel_layer()
pool = create_pool(layer.hosts[0])
print(json.dumps({"socket_timeout": pool.connection_kwargs.get("socket_timeout", "unset"),
                  "db": pool.connection_kwargs.get("db")}))
"""


def _settings(tmp_path: Path, **env: str) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", READ_SETTINGS], cwd=REPO, capture_output=True, text=True,
        env=server_env(tmp_path, **env), check=True,
    )
    found: dict[str, str] = json.loads(done.stdout.splitlines()[-1])
    return found


def test_with_redis_the_tasks_cache_and_channel_layer_all_use_it(tmp_path: Path) -> None:
    found = _settings(tmp_path, REDIS_URL="redis://127.0.0.1:6379/7")
    assert found == {
        "backend": "smartscheduler.rq_tasks.RQBackend",
        "queue": "redis://127.0.0.1:6379/7",
        "cache": "django.core.cache.backends.redis.RedisCache",
        "layer": "channels_redis.core.RedisChannelLayer",
    }


def test_without_redis_everything_stays_embedded(tmp_path: Path) -> None:
    found = _settings(tmp_path)
    assert found["backend"] == "django_tasks_db.DatabaseBackend"
    assert found["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert found["layer"] == "channels.layers.InMemoryChannelLayer"


def test_make_run_starts_the_worker_that_reads_the_configured_queue() -> None:
    assert default_worker_command({}) == DB_WORKER_COMMAND
    assert default_worker_command({"REDIS_URL": "redis://127.0.0.1:6379/0"}) == RQ_WORKER_COMMAND
    assert default_worker_command({"REDIS_URL_FILE": "/run/secrets/redis"}) == RQ_WORKER_COMMAND
    assert RQ_WORKER_COMMAND.split()[:2] == ["rqworker", "--with-scheduler"]


def test_the_channel_layer_never_times_out_a_waiting_consumer(tmp_path: Path) -> None:
    # Each consumer waits on a blocking pop of up to 5 s; a 5 s client read
    # timeout (redis-py 8's default) would tear down idle chats.
    done = subprocess.run(
        [sys.executable, "-c", CHANNEL_LAYER_POOL], cwd=REPO, capture_output=True, text=True,
        env=server_env(tmp_path, REDIS_URL="redis://127.0.0.1:6379/7"), check=True,
    )
    assert json.loads(done.stdout.splitlines()[-1]) == {"socket_timeout": None, "db": 7}
