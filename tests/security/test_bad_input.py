"""Hostile and malformed input to the public API and the booking form.

Each refusal is a clear 4xx (JSON ``{"error", "detail"}`` under /api/, a page
re-rendered with the reason on the form) and writes nothing: no appointment,
no customer. Text that is odd but legitimate (emoji, right-to-left scripts,
apostrophes and other SQL-looking words in a name) is booked and stored
exactly as sent.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from booking.models import Appointment, Customer, Service
from booking.tokens import manage_path_for
from tenants.context import tenant_context
from tests.booking.conftest import (  # noqa: F401  (fixtures shared with the booking tests)
    MakeShop,
    Shop,
    frozen,
    local,
    make_shop,
)
from tests.booking.test_api import booking, post, written
from tests.booking.test_booking_page import details, submit, text

TUESDAY = (2026, 3, 10)
SQL = ["1 OR 1=1", "1; DROP TABLE booking_appointment; --", "' OR ''='",
       "1' UNION SELECT name FROM sqlite_master --"]


@pytest.fixture(autouse=True)
def _no_rate_limits(settings: Any) -> None:
    # These tests send dozens of requests a minute to one business from one
    # address; the limits have their own tests and would answer 429 here.
    settings.RATELIMIT_ENABLE = False


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def biz(make_shop: MakeShop, frozen: Any) -> Shop:  # noqa: F811
    return make_shop()


def assert_api_refusal(response: Any, status: int | tuple[int, ...] = 422) -> dict[str, Any]:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, (response.status_code, response.content[:300])
    payload: dict[str, Any] = response.json()
    assert set(payload) == {"error", "detail"} and payload["error"] and payload["detail"]
    return payload


# --- the API: bodies --------------------------------------------------------------------
# One business per test and a loop over the cases: provisioning a business costs
# far more than a request, and every case must leave it untouched anyway.

BAD_JSON = {
    "empty": b"", "unclosed": b"{", "array": b"[]", "null": b"null", "number": b"42",
    "string": b'"a booking"', "single quotes": b"{'service': 1}", "not utf-8": b"\xff\xfe{\x00}",
    "nul bytes": b"\x00" * 16,
    # Within the 16 KB limit but deeper than the decoder's recursion limit.
    "deeply nested array": b"[" * 8000 + b"]" * 8000,
    "deeply nested object": b'{"a":' * 2500 + b"1" + b"}" * 2500,
}
BAD_STARTS = [
    "2026-03-10T09:00:00+25:00",  # no such offset
    "2026-03-10T09:00:00 America/New_York",
    "2026-03-10T09:00:00[America/New_York]",
    "2026-03-10T09:00:00 EST",
    "2026-03-10T09:00:00",  # no zone at all
    "2026-02-30T09:00:00-05:00",  # no such day
    "2026-13-01T09:00:00-05:00",
    "2026-03-10T24:30:00-04:00",
    "9999-12-31T23:59:59-14:00",  # its UTC instant is past datetime's last year
    "0001-01-01T00:00:00+14:00",  # and this one before its first
    "9999-12-31T09:00:00-05:00",
    "2027-03-09T09:00:00-05:00",  # a year ahead: beyond max_days_ahead
    "2026-03-10T09:00:00-04:00\x00",
    "2026-03-10T09:00:00-04:00' OR '1'='1",
    "",
]
BAD_FIELDS: list[dict[str, Any]] = [
    {"name": "Ada\x00Lovelace"}, {"name": "\u202eecalevoL adA"}, {"name": "Ada\x1b[31m"},
    {"name": "\ud800"}, {"name": " \t\n"}, {"name": "x" * 121},
    {"phone": "+1212555\x000100"}, {"phone": "+1 (212) 555-0100' OR 1=1 --"},
    {"phone": "١٢١٢٥٥٥٠١٠٠" * 4}, {"email": "ada\x00@example.com"},
    {"email": "ada@example.com'; --"}, {"email": "a" * 250 + "@example.com"},
    *({"service": sql} for sql in SQL), *({"staff": sql} for sql in SQL),
    {"service": 2**63}, {"service": -1}, {"service": 0}, {"staff": 2**70}, {"service": 1e308},
]


def test_body_over_the_upload_limit_is_a_413_and_writes_nothing(client: Client,
                                                                biz: Shop) -> None:
    huge = json.dumps(booking(biz, name="x" * (django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)))
    assert_api_refusal(post(client, biz, huge), 413)
    # Content-Length says small, the stream says otherwise: Django reads only
    # the declared bytes, so the JSON is cut short and refused.
    body = json.dumps(booking(biz, name="x" * 20_000)).encode()
    response = client.generic("POST", f"/api/b/{biz.tenant.slug}/appointments", body,
                              content_type="application/json", CONTENT_LENGTH="100")
    assert_api_refusal(response, (400, 413))
    assert written(biz) == (0, 0)


def test_bad_json_is_a_400_and_writes_nothing(client: Client, biz: Shop) -> None:
    for case, body in BAD_JSON.items():
        payload = assert_api_refusal(post(client, biz, body), 400)
        assert payload["error"] == "bad_json", case
    assert written(biz) == (0, 0)


def test_bad_zones_dates_and_far_future_starts_are_refused(client: Client, biz: Shop) -> None:
    for start in BAD_STARTS:
        payload = assert_api_refusal(post(client, biz, booking(biz, start=start)))
        assert payload["error"] in {"invalid_input", "too_far_ahead"}, start
    assert written(biz) == (0, 0)


def test_bad_fields_are_refused_and_write_nothing(client: Client, biz: Shop) -> None:
    for changes in BAD_FIELDS:
        payload = assert_api_refusal(post(client, biz, json.dumps(booking(biz, **changes))))
        assert payload["error"] == "invalid_input", changes
    assert written(biz) == (0, 0)


def test_bad_idempotency_keys_are_refused(client: Client, biz: Shop) -> None:
    for key in ["k" * 101, "clé", "a\x00b", "a\tb", ""]:
        response = client.post(f"/api/b/{biz.tenant.slug}/appointments",
                               json.dumps(booking(biz)), content_type="application/json",
                               HTTP_IDEMPOTENCY_KEY=key.encode().decode("latin-1"))
        assert_api_refusal(response)
    assert written(biz) == (0, 0)


def test_unicode_and_sql_looking_names_are_stored_exactly(client: Client, biz: Shop) -> None:
    names = ["José Ñúñez 🦷", "محمد الأحمد", "דוד כהן", "李小龙",
             "Robert'); DROP TABLE booking_customer;--", "O'Brien \" OR \"\"=\""]
    for n, name in enumerate(names):
        start = local(*TUESDAY, 9 + n // 2, 30 * (n % 2))  # 09:00, 09:30, 10:00, ...
        response = post(client, biz, booking(biz, name=name, phone=f"+1212555{n:04d}",
                                             start=start.isoformat()))
        assert response.status_code == 201, (name, response.content)
    with tenant_context(biz.tenant):
        assert sorted(Customer.objects.values_list("name", flat=True)) == sorted(names)
        assert Appointment.objects.count() == len(names)
        assert Service.objects.count() == 3  # the tables are all still there


# --- the API: queries and paths ---------------------------------------------------------


def test_bad_availability_queries_are_4xx(client: Client, biz: Shop) -> None:
    for query in [
        {"start": "2026-02-30", "end": "2026-03-02"},
        {"start": "2026-03-10", "end": "2026-02-30"},
        {"start": "9999-12-01", "end": "9999-12-31"},
        {"start": "0001-01-01", "end": "0001-01-05"},
        {"start": "2026-03-10", "end": "9999-12-31"},
        {"start": "2026-03-10' OR '1'='1", "end": "2026-03-11"},
        {"start": "2026-03-10", "end": "2026-03-11", "service": "1 OR 1=1"},
        {"start": "2026-03-10", "end": "2026-03-11", "staff": "0 UNION SELECT 1"},
        {"start": "2026-03-10", "end": "2026-03-11", "service": str(2**64)},
        {"start": "2026-03-10\x00", "end": "2026-03-11"},
    ]:
        params = {"service": str(biz.services["Checkup"])} | query
        assert_api_refusal(client.get(f"/api/b/{biz.tenant.slug}/availability", params))


def test_strange_business_slugs_are_404(client: Client, biz: Shop) -> None:
    for slug in ["x' OR '1'='1", "..%2F..%2Fetc", "%00", "a" * 300, "🦷"]:
        for path in (f"/api/b/{slug}/services", f"/api/b/{slug}/appointments"):
            response = client.post(path, json.dumps(booking(biz)),
                                   content_type="application/json")
            assert response.status_code == 404, (path, response.status_code)
    assert written(biz) == (0, 0)


# --- the booking form -------------------------------------------------------------------


def test_oversized_form_posts_are_a_400(client: Client, biz: Shop) -> None:
    response = submit(client, biz, details(
        biz, name="x" * (django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)))
    assert response.status_code in (400, 413)
    fields = {f"f{n}": "x" for n in range(django_settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}
    assert submit(client, biz, details(biz) | fields).status_code == 400
    assert written(biz) == (0, 0)


def test_bad_form_input_is_shown_on_the_form_and_writes_nothing(client: Client,
                                                                biz: Shop) -> None:
    for changes, message in [
        ({"start": "2026-02-30T09:00:00-05:00"}, "Please pick one of the times listed."),
        ({"start": "2026-03-10T09:00:00+25:00"}, "Please pick one of the times listed."),
        ({"start": "2026-03-10T09:00:00 America/New_York"}, "Please pick one of the times"),
        ({"start": "9999-12-31T23:59:59-14:00"}, "Please pick one of the times listed."),
        ({"start": "0001-01-01T00:00:00+14:00"}, "Please pick one of the times listed."),
        ({"start": "2026-03-10T09:00:00-04:00\x00"}, "Please pick one of the times listed."),
        ({"start": "2027-03-09T09:00:00-05:00"}, "too far ahead"),
        ({"name": "Ada\x00Lovelace"}, "Null characters are not allowed."),
        ({"name": "\u202eecalevoL adA"}, "odd characters"),
        ({"phone": "+1212555\x000100"}, "Null characters are not allowed."),
        *(({"service": sql}, "Please choose one of the services listed.") for sql in SQL),
        *(({"staff": sql}, "Please choose someone who offers this service.") for sql in SQL),
        ({"service": str(2**64)}, "Please choose one of the services listed."),
        ({"key": "' OR 1=1 --"}, "Please reload the page and try again."),
    ]:
        response = submit(client, biz, details(biz, **changes))
        assert 400 <= response.status_code < 500, changes
        assert message in text(response), changes
    assert written(biz) == (0, 0)


def test_the_form_books_unicode_and_sql_looking_names_verbatim(client: Client,
                                                                biz: Shop) -> None:
    names = ["José Ñúñez 🦷", "محمد الأحمد", "Robert'); DROP TABLE booking_customer;--"]
    for hour, name in enumerate(names, start=9):
        response = submit(client, biz, details(biz, name=name, phone=f"+1212555{hour:04d}",
                                               start=local(*TUESDAY, hour).isoformat()))
        assert response.status_code == 303, name
    with tenant_context(biz.tenant):
        assert sorted(Customer.objects.values_list("name", flat=True)) == sorted(names)


def test_the_page_survives_bad_query_strings(client: Client, biz: Shop) -> None:
    for query in [{"service": "1 OR 1=1"}, {"date": "2026-02-30"}, {"from": "9999-12-31"},
                  {"date": "0001-01-01"}, {"staff": "' OR 1=1"}, {"service": "\x00"},
                  {"start": "2026-03-10T09:00:00-04:00\x00"}]:
        params = {"service": str(biz.services["Checkup"])} | query
        for path in (f"/b/{biz.tenant.slug}/", f"/b/{biz.tenant.slug}/book/"):
            response = client.get(path, params)
            assert response.status_code in (200, 302, 400), (path, query, response.status_code)


form_text = st.text(max_size=200) | st.sampled_from([*SQL, "", " ", "\x00", "🦷", "2026-02-30"])


@hypothesis_settings(max_examples=80, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow])
@given(fields=st.fixed_dictionaries({}, optional={
    "service": form_text, "staff": form_text, "start": form_text, "key": form_text,
    "name": form_text, "phone": form_text, "email": form_text,
}))
def test_random_booking_forms_never_fail_and_book_only_when_valid(
    client: Client, biz: Shop, fields: dict[str, str]
) -> None:
    before = written(biz)
    response = submit(client, biz, fields)
    # A random form almost never books; when it does, it is a redirect to the confirmation.
    assert response.status_code in (303, 400, 409, 422), response.status_code
    if response.status_code != 303:
        assert written(biz) == before


@hypothesis_settings(max_examples=80, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow])
@given(body=st.dictionaries(
    st.sampled_from(["service", "start", "name", "phone", "email", "staff", "notes"]),
    st.none() | st.booleans() | st.integers() | st.floats() | form_text,
))
def test_random_api_bodies_never_fail_and_book_only_when_valid(
    client: Client, biz: Shop, body: dict[str, Any]
) -> None:
    before = written(biz)
    response = post(client, biz, json.dumps(body))
    assert response.status_code in (201, 400, 409, 422), response.status_code
    if response.status_code != 201:
        assert_api_refusal(response, response.status_code)
        assert written(biz) == before


@hypothesis_settings(max_examples=50, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow])
@given(fields=st.fixed_dictionaries({}, optional={
    "service": form_text, "staff": form_text, "name": form_text, "phone": form_text,
    "from": form_text, "part_of_day": form_text, "auto_book": form_text,
    "days": st.lists(form_text, max_size=8),
}))
def test_random_waitlist_forms_never_fail(client: Client, biz: Shop,
                                          fields: dict[str, Any]) -> None:
    response = client.post(f"/b/{biz.tenant.slug}/waitlist/join/", fields)
    # 200: on the waitlist (or nothing to wait for); 400: the form with its errors.
    assert response.status_code in (200, 400), response.status_code
    assert written(biz) == (0, 0) or response.status_code == 200


@hypothesis_settings(max_examples=50, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow])
@given(fields=st.fixed_dictionaries({}, optional={
    "start": form_text | st.sampled_from(BAD_STARTS), "staff": form_text}))
def test_random_reschedule_forms_never_fail_and_keep_the_appointment(
    client: Client, biz: Shop, fields: dict[str, str]
) -> None:
    booked = post(client, biz, booking(biz, phone="+12125550142"))
    manage_url = booked.json()["manage_url"] if booked.status_code == 201 else None
    with tenant_context(biz.tenant):
        before = Appointment.objects.get()  # booked now or by an earlier example
        manage_url = manage_url or manage_path_for(before)
    response = client.post(f"{urlsplit(manage_url).path}reschedule/", fields)
    assert response.status_code in (303, 400, 409, 422), response.status_code
    with tenant_context(biz.tenant):
        after = Appointment.objects.get()
    if response.status_code != 303:
        assert (after.start, after.staff_id, after.status) == (
            before.start, before.staff_id, before.status)


def test_the_same_helpers_book_when_the_input_is_good(client: Client, biz: Shop) -> None:
    # The control case: these tests can fail, because good input does write.
    response = post(client, biz, booking(biz, start=local(*TUESDAY, 10).isoformat()))
    assert response.status_code == 201
    assert written(biz) == (1, 1)
    form = submit(client, biz, details(biz, key=uuid.uuid4().hex, phone="+1 212 555 0199"))
    assert form.status_code == 303
    assert written(biz) == (2, 2)
