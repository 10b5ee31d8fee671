"""Request ids, structured logs, error pages without traces, and the readiness probe."""

from __future__ import annotations

import io
import json
import logging
import re
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.db import OperationalError, connections
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

import smartscheduler.health as health
from smartscheduler.logging import JsonLinesFormatter, RequestContextFilter
from smartscheduler.urls import urlpatterns as site_urlpatterns
from tenants.context import tenant_context
from tenants.db import alias_for, tenant_db_path
from tests.booking.conftest import MakeShop, Shop, frozen, local, make_shop  # noqa: F401
from tests.security.conftest import restartable_server

TRACE_MARKER = "kaboom-4f1c-internal-detail"


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(TRACE_MARKER)


def denied(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied("owners only")


def database_gone(request: HttpRequest) -> HttpResponse:
    raise OperationalError("connection failed: FATAL:  sorry, too many clients already")


# This module doubles as the URLconf of the error-page tests: the site plus views that fail.
urlpatterns = [
    path("boom/", boom),
    path("api/boom/", boom),
    path("denied/", denied),
    path("busy/", database_gone),
    path("api/busy/", database_gone),
    *site_urlpatterns,
]
handler400 = "smartscheduler.views.bad_request"
handler403 = "smartscheduler.views.permission_denied"
handler404 = "smartscheduler.views.page_not_found"
handler500 = "smartscheduler.views.server_error"
error_urls = pytest.mark.urls(__name__)

LogLines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    """The JSON lines the configured console handler would write during the test."""
    root = logging.getLogger()
    console = next(h for h in root.handlers if h.get_name() == "console")
    assert isinstance(console.formatter, JsonLinesFormatter)
    assert any(isinstance(f, RequestContextFilter) for f in console.filters)
    stream = io.StringIO()
    copy = logging.StreamHandler(stream)
    copy.setFormatter(console.formatter)
    for log_filter in console.filters:
        copy.addFilter(log_filter)
    root.addHandler(copy)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(copy)


@pytest.fixture
def biz(make_shop: MakeShop, frozen: Any) -> Shop:  # noqa: F811
    return make_shop()


# --- request ids --------------------------------------------------------------------------


def test_each_response_carries_a_fresh_request_id(client: Client, db: None) -> None:
    first = client.get("/")["X-Request-ID"]
    second = client.get("/")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second
    # Probes too: they are answered before the rest of the stack.
    assert re.fullmatch(r"[0-9a-f]{32}", client.get("/healthz")["X-Request-ID"])


def test_a_well_formed_incoming_request_id_is_kept(client: Client, db: None) -> None:
    incoming = "lb-7f3a9c1e-2b4d-4e8f-9a0b-1c2d3e4f5a6b"
    assert client.get("/", headers={"X-Request-ID": incoming})["X-Request-ID"] == incoming


@pytest.mark.parametrize("incoming", [
    "short", "x" * 200, "abc def ghi jkl", "id<script>alert(1)</script>", "line\nbreak-12345",
])
def test_a_malformed_incoming_request_id_is_replaced(
    client: Client, db: None, incoming: str
) -> None:
    returned = client.get("/", headers={"X-Request-ID": incoming})["X-Request-ID"]
    assert returned != incoming
    assert re.fullmatch(r"[0-9a-f]{32}", returned)


# --- structured logs ----------------------------------------------------------------------


def test_a_bookings_log_lines_carry_request_and_tenant_but_no_customer(
    client: Client, biz: Shop, log_lines: LogLines
) -> None:
    body = {
        "service": biz.services["Checkup"],
        "start": local(2026, 3, 10, 9).isoformat(),
        "name": "Ada Lovelace",
        "phone": "+12125550100",
        "email": "ada.lovelace@example.com",
        "staff": biz.staff["Ana"],
    }
    response = client.post(f"/api/b/{biz.tenant.slug}/appointments", json.dumps(body),
                           content_type="application/json")
    assert response.status_code == 201, response.content
    request_id = response["X-Request-ID"]

    lines = [line for line in log_lines() if line["request_id"] == request_id]
    assert {line["logger"] for line in lines} >= {"booking.services", "smartscheduler.access"}
    assert all(line["tenant_id"] == str(biz.tenant.pk) for line in lines), lines
    access = next(line for line in lines if line["logger"] == "smartscheduler.access")
    assert access["route"] == "/api/b/<slug>/appointments"
    assert access["status"] == 201 and access["method"] == "POST"
    assert access["level"] == "INFO" and "time" in access

    text = json.dumps(lines)
    for personal in ("Ada", "Lovelace", "2125550100", "ada.lovelace", "example.com"):
        assert personal not in text, personal


def test_the_access_line_names_the_route_not_the_path(
    client: Client, biz: Shop, log_lines: LogLines
) -> None:
    # Manage links carry a secret token in the path; it must not reach the logs.
    token = "SeCrEtToKeN-do-not-log-0123456789"
    response = client.get(f"/b/{biz.tenant.slug}/manage/{token}/")
    assert response.status_code == 404
    lines = log_lines()
    assert token not in json.dumps(lines)
    # Django's own "Not Found" line too: written after the middleware, it still
    # carries the request's id and names the pattern.
    (not_found,) = [x for x in lines if x["logger"] == "django.request"]
    assert not_found["message"] == "Not Found: /b/<slug:slug>/manage/<str:token>/"
    assert not_found["request_id"] == response["X-Request-ID"]
    assert not_found["tenant_id"] == str(biz.tenant.pk)


def test_lines_outside_a_request_say_so(log_lines: LogLines) -> None:
    logging.getLogger("smartscheduler.test").warning("no request here")
    (line,) = [x for x in log_lines() if x["message"] == "no request here"]
    assert line["request_id"] == "-" and line["tenant_id"] == "-"
    assert line["level"] == "WARNING" and line["logger"] == "smartscheduler.test"


def test_work_for_a_tenant_outside_http_logs_its_tenant(biz: Shop, log_lines: LogLines) -> None:
    # Websocket consumers and tasks run inside tenant_context, like the views.
    with tenant_context(biz.tenant):
        logging.getLogger("agent.consumers").info("turn done")
    (line,) = [x for x in log_lines() if x["message"] == "turn done"]
    assert line["tenant_id"] == str(biz.tenant.pk)


# --- error pages --------------------------------------------------------------------------


def no_trace(html: str) -> None:
    for leak in (TRACE_MARKER, "Traceback", "RuntimeError", 'File "', "/work/", ".py"):
        assert leak not in html, leak


@error_urls
def test_a_crash_shows_a_friendly_page_without_a_trace(db: None) -> None:
    client = Client(raise_request_exception=False)
    response = client.get("/boom/")
    assert response.status_code == 500
    html = response.content.decode()
    no_trace(html)
    assert "Something went wrong on our side" in html
    assert "css/site.css" in html, "extends the site's base template"
    # The page names the request id, so support can find the logged trace.
    assert response["X-Request-ID"] in html


@error_urls
def test_a_database_out_of_reach_answers_503_with_retry_after(db: None) -> None:
    client = Client(raise_request_exception=False)
    page = client.get("/busy/")
    assert page.status_code == 503
    assert page["Retry-After"] == "5"
    assert "We are very busy right now" in page.content.decode()
    no_trace(page.content.decode())
    api = client.get("/api/busy/")
    assert (api.status_code, api["Retry-After"], api.json()["error"]) == (503, "5", "busy")
    assert "too many clients" not in api.content.decode()


@error_urls
def test_a_database_out_of_reach_in_middleware_answers_503_too(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tenant lookup runs in middleware, before any view's own handling.
    from tenants import directory as tenant_directory

    def refuse(*args: object, **kwargs: object) -> None:
        raise OperationalError("connection failed: FATAL:  sorry, too many clients already")

    monkeypatch.setattr(tenant_directory.RowCopies, "_read", refuse)
    response = Client(raise_request_exception=False).get("/api/b/somebody/services")
    assert response.status_code == 503
    assert response.json()["error"] == "busy"


@error_urls
def test_a_crash_under_the_api_answers_json(db: None) -> None:
    response = Client(raise_request_exception=False).get("/api/boom/")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "server_error"
    no_trace(response.content.decode())


@error_urls
def test_missing_pages_are_friendly_and_api_ones_are_json(client: Client, db: None) -> None:
    page = client.get("/no-such-page/")
    assert page.status_code == 404
    assert "We couldn't find that page" in page.content.decode()
    api = client.get("/api/no-such-endpoint")
    assert api.status_code == 404
    assert api.json()["error"] == "not_found"


@error_urls
def test_forbidden_and_bad_requests_get_friendly_pages(client: Client, db: None) -> None:
    forbidden = client.get("/denied/")
    assert forbidden.status_code == 403
    assert "You can't open this page" in forbidden.content.decode()
    assert "owners only" not in forbidden.content.decode()

    bad_host = client.get("/", headers={"Host": "attacker.example"})
    assert bad_host.status_code == 400
    html = bad_host.content.decode()
    assert "We couldn't understand that request" in html
    assert "attacker.example" not in html and "ALLOWED_HOSTS" not in html


def test_a_form_without_its_csrf_token_gets_a_friendly_page(db: None) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": "someone@example.com", "password": "x"})
    assert response.status_code == 403
    html = response.content.decode()
    assert "Please try that again" in html
    assert "CSRF" not in html


# --- probes -------------------------------------------------------------------------------


def test_ready_when_every_backend_answers(client: Client, biz: Shop) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "checks": {
        "control_plane": "ok", "tenant_db": "ok", "cache": "ok", "channel_layer": "ok"}}


def test_probes_answer_a_load_balancer_calling_by_ip(client: Client, biz: Shop) -> None:
    for probe in ("/healthz", "/readyz"):
        response = client.get(probe, headers={"Host": "10.0.3.7:8000"})
        assert response.status_code == 200, probe


def test_ready_on_a_fresh_install_without_tenant_databases(
    client: Client, db: None, settings: Any, tmp_path: Path
) -> None:
    # No business yet and no template: the folder they will go in is created on demand.
    settings.TENANT_DB_DIR = str(tmp_path / "not-created-yet" / "tenants")
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["tenant_db"] == "ok"


class ForgetfulCache:
    def set(self, *args: Any, **kwargs: Any) -> None:
        pass

    def get(self, *args: Any, **kwargs: Any) -> None:
        return None

    def delete(self, *args: Any, **kwargs: Any) -> None:
        pass


class DeafChannelLayer:
    async def new_channel(self, prefix: str = "") -> str:
        return prefix + "1"

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        raise ConnectionRefusedError("channel layer is down")

    async def receive(self, channel: str) -> dict[str, Any]:
        raise AssertionError("never reached")


def test_not_ready_when_the_cache_loses_data(
    client: Client, biz: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "cache", ForgetfulCache())
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"] == {"control_plane": "ok", "tenant_db": "ok",
                              "cache": "failed: CheckFailed", "channel_layer": "ok"}


def test_not_ready_when_the_channel_layer_is_down(
    client: Client, biz: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "get_channel_layer", DeafChannelLayer)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["channel_layer"] == "failed: ConnectionRefusedError"
    assert "down" not in response.content.decode(), "only the exception type is shown"


def test_not_ready_when_the_tenant_database_is_gone(client: Client, biz: Shop) -> None:
    connections[alias_for(biz.tenant.pk)].close()  # opened while the fixture set it up
    tenant_db_path(biz.tenant.pk).unlink()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["tenant_db"] == "failed: OperationalError"
    assert response.json()["checks"]["control_plane"] == "ok"


def test_the_real_server_is_ready_and_answers_probes_by_ip() -> None:
    # Under ASGI the probe runs in a worker thread and reaches the channel layer
    # through async_to_sync: this is the path a load balancer takes.
    with restartable_server("ss-readyz-") as server:
        request = urllib.request.Request(f"{server.live.url}/readyz",
                                         headers={"Host": "10.0.3.7:8000"})
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 200
            assert json.loads(response.read())["checks"] == {
                "control_plane": "ok", "tenant_db": "ok", "cache": "ok", "channel_layer": "ok"}
            assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
