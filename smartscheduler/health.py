"""Probes: ``/healthz`` (the process and its control plane) and ``/readyz`` (all it needs).

Both are answered before the host check. Load balancers and container health
checks call a task by its private IP (an ALB sends ``Host: 10.0.x.y:8000``),
which ALLOWED_HOSTS rightly refuses, so the probe would see 400 and drain a
healthy task. The probes return no host-derived data, so skipping host
validation for these paths is safe.

Readiness asks every backend a request may need: the control-plane database,
one tenant database, the cache and the channel layer. A failed check is named
with its exception type only: connection strings and messages stay in the logs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection, connections
from django.http import HttpRequest, HttpResponse

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
CHANNEL_LAYER_TIMEOUT_SECONDS = 2.0
OK = "ok"

logger = logging.getLogger(__name__)


class CheckFailed(Exception):
    """A backend answered, but not as a healthy one would."""


def check_control_plane() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        if cursor.fetchone() != (1,):
            raise CheckFailed("control plane returned a wrong answer")


def check_tenant_database() -> None:
    """One active business's database, else the SQLite template new ones are copied from.

    With neither yet (a fresh install), the folder they will be created in (or
    the nearest folder above it that exists) must be writable.
    """
    from tenants.db import TEMPLATE_ALIAS, alias_for, template_db_path, tenant_db_dir
    from tenants.models import Tenant

    tenant_id = (Tenant.objects.filter(status=Tenant.Status.ACTIVE)
                 .order_by("pk").values_list("pk", flat=True).first())
    if tenant_id is not None:
        alias = alias_for(tenant_id)
    elif settings.TENANT_DATABASE_URL:
        return  # tenant databases on a server: none exists to ask yet
    elif template_db_path().exists():
        alias = TEMPLATE_ALIAS
    else:
        folder = tenant_db_dir().resolve()
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not os.access(folder, os.W_OK):
            raise CheckFailed("tenant database folder is not writable")
        return
    tenant_connection = connections[alias]
    try:
        with tenant_connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM django_migrations LIMIT 1")
            if cursor.fetchone() is None:
                raise CheckFailed("tenant database has no migrations")
    finally:
        # Probes run often: keep no tenant file open between them.
        tenant_connection.close()


def check_cache() -> None:
    key = f"readyz:{uuid.uuid4().hex}"
    token = uuid.uuid4().hex
    cache.set(key, token, timeout=10)
    try:
        if cache.get(key) != token:
            raise CheckFailed("cache did not return what was stored")
    finally:
        cache.delete(key)


async def _channel_layer_round_trip() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise CheckFailed("no channel layer configured")
    channel = await layer.new_channel("readyz.")
    token = uuid.uuid4().hex
    async with asyncio.timeout(CHANNEL_LAYER_TIMEOUT_SECONDS):
        await layer.send(channel, {"type": "readyz.ping", "token": token})
        message = await layer.receive(channel)
    if message.get("token") != token:
        raise CheckFailed("channel layer delivered a different message")


def check_channel_layer() -> None:
    async_to_sync(_channel_layer_round_trip)()


CHECKS: dict[str, Callable[[], None]] = {
    "control_plane": check_control_plane,
    "tenant_db": check_tenant_database,
    "cache": check_cache,
    "channel_layer": check_channel_layer,
}


def readiness() -> dict[str, str]:
    """Each check's outcome: "ok" or "failed: <ExceptionType>"."""
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            logger.warning("readiness check %s failed: %s", name, type(exc).__name__)
            results[name] = f"failed: {type(exc).__name__}"
        else:
            results[name] = OK
    return results


class HealthCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        # The views import this module's checks; imported here to avoid a cycle.
        from smartscheduler.views import healthz, readyz

        self.get_response = get_response
        self.probes: dict[str, Callable[[HttpRequest], HttpResponse]] = {
            HEALTH_PATH: healthz,
            READY_PATH: readyz,
        }

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = self.probes.get(request.path_info)
        if probe is not None:
            return probe(request)
        return self.get_response(request)
