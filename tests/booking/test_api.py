from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client

from booking.models import Appointment, Customer
from booking.tokens import appointment_from_manage_token
from tenants.context import tenant_context
from tenants.services import tenant_set_status
from tests.booking.conftest import MakeShop, Shop, base_setup, local

TUESDAY = (2026, 3, 10)


@pytest.fixture
def client() -> Client:
    return Client()


def post(client: Client, shop: Shop, body: Any, **headers: str) -> Any:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(f"/api/b/{shop.tenant.slug}/appointments", data,
                       content_type="application/json", headers=headers)


def booking(shop: Shop, **overrides: Any) -> dict[str, Any]:
    return {
        "service": shop.services["Checkup"],
        "start": local(*TUESDAY, 9).isoformat(),
        "name": "Ada Lovelace",
        "phone": "+12125550100",
        "email": "ada@example.com",
        "staff": shop.staff["Ana"],
    } | overrides


def written(shop: Shop) -> tuple[int, int]:
    with tenant_context(shop.tenant):
        return Appointment.objects.count(), Customer.objects.count()


@pytest.fixture
def biz(make_shop: MakeShop, frozen: Any) -> Shop:
    """A business with the base setup; no tenant in context (requests bring their own)."""
    return make_shop()


# --- services ---------------------------------------------------------------------------------


def test_services_lists_active_services_in_order(client: Client, biz: Shop) -> None:
    response = client.get(f"/api/b/{biz.tenant.slug}/services")
    assert response.status_code == 200
    assert response.json() == [
        {"id": biz.services["Cleaning"], "name": "Cleaning", "duration_minutes": 60,
         "price": "120.00", "description": "Polish"},
        {"id": biz.services["Checkup"], "name": "Checkup", "duration_minutes": 30,
         "price": "80.00", "description": ""},
        {"id": biz.services["Whitening"], "name": "Whitening", "duration_minutes": 90,
         "price": "350.00", "description": ""},
    ]


def test_unknown_business_is_a_404_on_every_endpoint(client: Client, biz: Shop) -> None:
    assert client.get("/api/b/no-such-biz/services").status_code == 404
    assert client.get("/api/b/no-such-biz/availability?service=1&start=2026-03-10"
                      "&end=2026-03-10").status_code == 404
    response = client.post("/api/b/no-such-biz/appointments", json.dumps(booking(biz)),
                           content_type="application/json")
    assert response.status_code == 404


def test_suspended_business_refuses_with_a_clear_403(client: Client, biz: Shop) -> None:
    tenant_set_status(tenant=biz.tenant, status="suspended")
    response = post(client, biz, booking(biz))
    assert response.status_code == 403
    assert response.json()["error"] == "business_unavailable"
    assert written(biz) == (0, 0)


# --- availability ------------------------------------------------------------------------------


def test_availability_lists_local_times_with_offset(client: Client, biz: Shop) -> None:
    response = client.get(f"/api/b/{biz.tenant.slug}/availability",
                          {"service": biz.services["Cleaning"], "start": "2026-03-10",
                           "end": "2026-03-10"})
    assert response.status_code == 200
    body = response.json()
    assert body["timezone"] == "America/New_York"
    assert body["slots"][0] == {"start": "2026-03-10T09:00:00-04:00",
                                "end": "2026-03-10T10:00:00-04:00",
                                "staff_id": biz.staff["Ana"]}
    starts = [s["start"][11:16] for s in body["slots"]]
    assert "11:00" in starts and "12:00" not in starts and "16:00" in starts
    assert "16:15" not in starts


def test_availability_for_one_staff_member(client: Client, biz: Shop) -> None:
    response = client.get(f"/api/b/{biz.tenant.slug}/availability",
                          {"service": biz.services["Checkup"], "start": "2026-03-10",
                           "end": "2026-03-11", "staff": biz.staff["Ben"]})
    assert response.status_code == 200
    slots = response.json()["slots"]
    assert slots and {s["staff_id"] for s in slots} == {biz.staff["Ben"]}


def test_booked_slot_disappears_from_availability(client: Client, biz: Shop) -> None:
    assert post(client, biz, booking(biz)).status_code == 201
    slots = client.get(f"/api/b/{biz.tenant.slug}/availability",
                       {"service": biz.services["Checkup"], "start": "2026-03-10",
                        "end": "2026-03-10", "staff": biz.staff["Ana"]}).json()["slots"]
    assert "2026-03-10T09:00:00-04:00" not in [s["start"] for s in slots]
    assert "2026-03-10T09:30:00-04:00" in [s["start"] for s in slots]


@pytest.mark.parametrize(
    ("day", "now", "offset"),
    [
        ("2026-03-08", datetime(2026, 3, 1, 12, tzinfo=UTC), "-04:00"),  # spring forward
        ("2026-11-01", datetime(2026, 10, 25, 12, tzinfo=UTC), "-05:00"),  # fall back
    ],
)
def test_dst_days_start_at_nine_local(client: Client, make_shop: MakeShop, day: str,
                                      now: datetime, offset: str) -> None:
    with time_machine.travel(now, tick=False):
        shop = make_shop()
        response = client.get(f"/api/b/{shop.tenant.slug}/availability",
                              {"service": shop.services["Checkup"], "start": day, "end": day})
    assert response.status_code == 200
    slots = response.json()["slots"]
    assert slots[0]["start"] == f"{day}T09:00:00{offset}"
    assert slots[-1]["start"] == f"{day}T11:30:00{offset}"
    assert len(slots) == 11  # 09:00 .. 11:30 every 15 minutes (Sunday hours 09-12)


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"start": "2026-03-10", "end": "2026-03-10"}, 422),  # no service
        ({"service": "abc", "start": "2026-03-10", "end": "2026-03-10"}, 422),
        ({"service": "CHECKUP", "start": "10/03/2026", "end": "2026-03-10"}, 422),
        ({"service": "CHECKUP", "start": "2026-03-10", "end": "2026-02-30"}, 422),
        ({"service": "CHECKUP", "start": "2026-03-10", "end": "2026-03-09"}, 422),  # backwards
        ({"service": "CHECKUP", "start": "2026-03-01", "end": "2026-04-01"}, 422),  # 32 days
        ({"service": 999, "start": "2026-03-10", "end": "2026-03-10"}, 422),
        ({"service": "CHECKUP", "start": "2026-03-10", "end": "2026-03-10", "staff": 999}, 422),
        ({"service": "CHECKUP", "start": "0001-01-01", "end": "0001-01-02"}, 422),
    ],
)
def test_bad_availability_queries_are_refused(client: Client, biz: Shop, query: dict[str, Any],
                                              status: int) -> None:
    if query.get("service") == "CHECKUP":
        query["service"] = biz.services["Checkup"]
    response = client.get(f"/api/b/{biz.tenant.slug}/availability", query)
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error", "detail"} and body["detail"]


def test_a_full_month_is_allowed(client: Client, biz: Shop) -> None:
    response = client.get(f"/api/b/{biz.tenant.slug}/availability",
                          {"service": biz.services["Checkup"], "start": "2026-03-01",
                           "end": "2026-03-31"})
    assert response.status_code == 200


# --- booking -----------------------------------------------------------------------------------


def test_booking_returns_201_with_reference_and_manage_link(client: Client, biz: Shop) -> None:
    response = post(client, biz, booking(biz))
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"reference", "start", "end", "service", "staff_id", "manage_url"}
    assert body["start"] == "2026-03-10T09:00:00-04:00"
    assert body["end"] == "2026-03-10T09:30:00-04:00"
    assert (body["service"], body["staff_id"]) == (biz.services["Checkup"], biz.staff["Ana"])
    prefix = f"http://127.0.0.1:8000/b/{biz.tenant.slug}/manage/"
    assert body["manage_url"].startswith(prefix) and body["manage_url"].endswith("/")
    token = body["manage_url"].removeprefix(prefix).rstrip("/")
    with tenant_context(biz.tenant):
        appointment = appointment_from_manage_token(token)
        assert appointment is not None and appointment.reference == body["reference"]
        assert appointment.channel == "api"
        assert appointment.customer.email == "ada@example.com"


def test_booking_without_staff_or_email(client: Client, biz: Shop) -> None:
    body = booking(biz)
    del body["staff"], body["email"]
    response = post(client, biz, body)
    assert response.status_code == 201
    assert response.json()["staff_id"] in biz.staff.values()
    response = post(client, biz, booking(biz, staff=None, email=None, phone="+12125550101"))
    assert response.status_code == 201


def test_taken_slot_is_a_409(client: Client, biz: Shop) -> None:
    assert post(client, biz, booking(biz)).status_code == 201
    response = post(client, biz, booking(biz, phone="+12125550101"))
    assert response.status_code == 409
    assert response.json()["error"] == "slot_taken"
    assert written(biz) == (1, 1)


def test_api_needs_no_csrf_token(biz: Shop) -> None:
    response = post(Client(enforce_csrf_checks=True), biz, booking(biz))
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("{not json", 400, "bad_json"),
        ("[1, 2]", 400, "bad_json"),
        ("", 400, "bad_json"),
        (b"\xff\xfe", 400, "bad_json"),
        ({"_drop": "name"}, 422, "invalid_input"),
        ({"_drop": "phone"}, 422, "invalid_input"),
        ({"_drop": "start"}, 422, "invalid_input"),
        ({"_drop": "service"}, 422, "invalid_input"),
        ({"notes": "hi"}, 422, "invalid_input"),  # extra field
        ({"service": "1"}, 422, "invalid_input"),
        ({"service": True}, 422, "invalid_input"),
        ({"service": 1.5}, 422, "invalid_input"),
        ({"staff": "Ana"}, 422, "invalid_input"),
        ({"name": 5}, 422, "invalid_input"),
        ({"name": ""}, 422, "invalid_input"),
        ({"name": "x" * 121}, 422, "invalid_input"),
        ({"phone": 2125550100}, 422, "invalid_input"),
        ({"phone": "not a phone"}, 422, "invalid_input"),
        ({"phone": "+1 555 555 5555"}, 422, "invalid_input"),
        ({"email": "nope"}, 422, "invalid_input"),
        ({"email": 5}, 422, "invalid_input"),
        ({"start": "2026-03-10T09:00:00"}, 422, "invalid_input"),  # naive
        ({"start": "2026-03-10"}, 422, "invalid_input"),
        ({"start": "tomorrow at nine"}, 422, "invalid_input"),
        ({"start": 1773147600}, 422, "invalid_input"),
        ({"start": "9999-12-31T23:59:00+00:00"}, 422, "invalid_input"),
        ({"start": "2026-03-10T09:07:00-04:00"}, 422, "off_grid"),
        ({"start": "2026-03-10T12:00:00-04:00"}, 422, "outside_hours"),
        ({"start": "2026-03-01T09:00:00-05:00"}, 422, "too_soon"),
        ({"start": "2026-06-01T09:00:00-04:00"}, 422, "too_far_ahead"),
        ({"start": "2026-03-13T09:00:00-04:00"}, 422, "closed"),
        ({"service": 999}, 422, "invalid_input"),
        ({"staff": 999}, 422, "invalid_input"),
        ({"service": "CLEANING", "staff": "BEN"}, 422, "not_offered"),
    ],
)
def test_bad_booking_requests_are_refused_and_write_nothing(
    client: Client, biz: Shop, body: Any, status: int, code: str
) -> None:
    if isinstance(body, dict):
        changes = dict(body)
        drop = changes.pop("_drop", None)
        if changes.get("service") == "CLEANING":
            changes["service"] = biz.services["Cleaning"]
        if changes.get("staff") == "BEN":
            changes["staff"] = biz.staff["Ben"]
        body = booking(biz, **changes)
        if drop:
            del body[drop]
    response = post(client, biz, body)
    assert response.status_code == status, response.content
    payload = response.json()
    assert set(payload) == {"error", "detail"}
    assert payload["error"] == code
    assert payload["detail"]
    assert written(biz) == (0, 0)


def test_detail_names_the_bad_field(client: Client, biz: Shop) -> None:
    assert "phone" in post(client, biz, booking(biz, phone="x")).json()["detail"]
    assert "notes" in post(client, biz, booking(biz, notes="x")).json()["detail"]
    assert "start" in post(client, biz, booking(biz, start="2026-03-10")).json()["detail"]


def test_body_over_16_kb_is_a_413(client: Client, biz: Shop) -> None:
    response = post(client, biz, booking(biz, name="x" * 17_000))
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert written(biz) == (0, 0)


def test_same_idempotency_key_replays_the_booking(client: Client, biz: Shop) -> None:
    first = post(client, biz, booking(biz), **{"Idempotency-Key": "abc-123"})
    again = post(client, biz, booking(biz), **{"Idempotency-Key": "abc-123"})
    assert first.status_code == again.status_code == 201
    assert again.json()["reference"] == first.json()["reference"]
    assert written(biz) == (1, 1)
    other = post(client, biz, booking(biz, start=local(*TUESDAY, 10).isoformat()),
                 **{"Idempotency-Key": "abc-123"})
    assert other.status_code == 409
    assert other.json()["error"] == "idempotency_key_reused"
    assert written(biz) == (1, 1)


def test_plan_limit_is_a_402(client: Client, make_shop: MakeShop, frozen: Any) -> None:
    shop = make_shop(plan="starter")
    with tenant_context(shop.tenant):
        customer = Customer.objects.create(name="Regular", phone="+12125550199")
        start = local(2026, 3, 20, 9)
        Appointment.objects.bulk_create(
            Appointment(
                service_id=shop.services["Checkup"], staff_id=shop.staff["Ben"],
                customer=customer, start=start + timedelta(days=i), block_start=start +
                timedelta(days=i), end=start + timedelta(days=i, minutes=30),
                block_end=start + timedelta(days=i, minutes=30), channel="dashboard",
                reference=f"AAA-{i:03d}".replace("0", "A").replace("1", "B"),
            )
            for i in range(100)
        )
    response = post(client, shop, booking(shop))
    assert response.status_code == 402
    assert response.json()["error"] == "plan_limit_reached"
    assert written(shop) == (100, 1)


# --- isolation ---------------------------------------------------------------------------------


def test_other_business_ids_and_references_do_not_work_here(client: Client,
                                                           make_shop: MakeShop,
                                                           frozen: Any) -> None:
    alpha = make_shop()
    setup = base_setup()
    setup["services"].append({"name": "Braces", "duration_minutes": 30, "price": "900.00"})
    setup["staff"].append({"name": "Cy", "services": ["Braces"],
                           "hours": {"tue": [["09:00", "17:00"]]}})
    beta = make_shop(setup)
    braces, cy = beta.services["Braces"], beta.staff["Cy"]
    assert braces not in alpha.services.values() and cy not in alpha.staff.values()

    response = post(client, alpha, booking(alpha, service=braces))
    assert response.status_code == 422
    response = post(client, alpha, booking(alpha, staff=cy))
    assert response.status_code == 422
    response = client.get(f"/api/b/{alpha.tenant.slug}/availability",
                          {"service": braces, "start": "2026-03-10", "end": "2026-03-10"})
    assert response.status_code == 422

    booked = post(client, beta, booking(beta, service=braces, staff=cy)).json()
    token = booked["manage_url"].rstrip("/").rsplit("/", 1)[1]
    with tenant_context(alpha.tenant):
        assert appointment_from_manage_token(token) is None
        assert not Appointment.objects.filter(reference=booked["reference"]).exists()
    with tenant_context(beta.tenant):
        assert appointment_from_manage_token(token) is not None
    assert written(alpha) == (0, 0)
    names = [s["name"] for s in client.get(f"/api/b/{alpha.tenant.slug}/services").json()]
    assert "Braces" not in names


def test_tampered_or_expired_manage_token_is_refused(client: Client, biz: Shop) -> None:
    booked = post(client, biz, booking(biz)).json()
    token = booked["manage_url"].rstrip("/").rsplit("/", 1)[1]
    with tenant_context(biz.tenant):
        assert appointment_from_manage_token(token[:-2] + "xx") is None
        assert appointment_from_manage_token("garbage") is None
        assert appointment_from_manage_token(
            token, now=datetime(2026, 4, 10, 14, tzinfo=UTC)) is None  # 30 days after the end


# --- schema ------------------------------------------------------------------------------------


def test_openapi_document_describes_the_three_endpoints(client: Client, db: None) -> None:
    response = client.get("/api/schema")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert set(paths) == {"/api/b/{slug}/services", "/api/b/{slug}/availability",
                          "/api/b/{slug}/appointments"}
    post_op = paths["/api/b/{slug}/appointments"]["post"]
    body_schema = post_op["requestBody"]["content"]["application/json"]["schema"]
    assert set(body_schema["required"]) == {"service", "start", "name", "phone"}
    assert body_schema["additionalProperties"] is False
    assert {"201", "402", "409", "413", "422"} <= set(post_op["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in post_op["parameters"])
