"""Schemathesis over ``/api/schema`` against the real server (daphne, production settings).

The document is fetched from the live server and every operation is fuzzed
with schema-valid and schema-violating requests. Half the requests go to a
business that exists, with its real service ids and dates near today, so the
fuzzing reaches the booking engine and not only the 404 for an unknown slug.
No response may be a 5xx, and every response must match what the document
declares: status code, content type and body schema.
"""

from __future__ import annotations

import http.client
import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.live_server import LiveServer
from tests.security.conftest import (
    availability_query,
    bookable_business,
    report,
    restartable_server,
)

SLUG = "fuzz-dental"
PHONES = ["+12125550100", "(212) 555-0101", "+44 20 7946 0958", "212.555.0102"]
NAMES = ["Ada Lovelace", "José Ñúñez 🦷", "محمد", "Robert'); DROP TABLE booking_customer;--"]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection]


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[LiveServer]:
    # The fuzzing sends hundreds of requests from one address; rate limits are
    # tested on their own and would turn most answers here into 429s.
    with restartable_server("ss-fuzz-api-", RATELIMIT_ENABLE="false") as server:
        bookable_business(server.live, SLUG)
        yield server.live


@pytest.fixture(scope="module")
def live_schema(fuzz_server: LiveServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzz_server.url}/api/schema", timeout=30)


@pytest.fixture(scope="module")
def catalogue(fuzz_server: LiveServer) -> dict[str, Any]:
    """Real service ids and slot starts of the business, to aim some requests at."""
    with urllib.request.urlopen(f"{fuzz_server.url}/api/b/{SLUG}/services") as response:
        services = json.load(response)
    first = datetime.now(UTC).date() + timedelta(days=2)
    query = availability_query(services[0]["id"], first, days=6)
    with urllib.request.urlopen(f"{fuzz_server.url}/api/b/{SLUG}/availability?{query}") as r:
        slots = json.load(r)["slots"]
    return {"services": [s["id"] for s in services], "starts": [s["start"] for s in slots],
            "staff": sorted({s["staff_id"] for s in slots}), "first": first}


# schemathesis's pytest integration (from_fixture) reads a private attribute that
# pytest 9 no longer has, so the operations are driven through its Python API:
# each one's strategy, positive and negative, under an ordinary Hypothesis test.
OPERATIONS = [("GET", "/api/b/{slug}/services"), ("GET", "/api/b/{slug}/availability"),
              ("POST", "/api/b/{slug}/appointments")]


def aim(case: schemathesis.Case, data: st.DataObject, catalogue: dict[str, Any]) -> None:
    """Point some generated requests at the real business and its real ids."""
    if data.draw(st.booleans(), label="real business"):
        case.path_parameters = {**(case.path_parameters or {}), "slug": SLUG}
    else:
        return
    real = data.draw(st.booleans(), label="real ids")
    if isinstance(case.query, dict) and real and "service" in case.query:
        case.query["service"] = data.draw(st.sampled_from(catalogue["services"]))
        start = catalogue["first"] + timedelta(days=data.draw(st.integers(-3, 40)))
        end = start + timedelta(days=data.draw(st.integers(-1, 32)))
        case.query["start"], case.query["end"] = start.isoformat(), end.isoformat()
    if isinstance(case.body, dict) and real:
        case.body["service"] = data.draw(st.sampled_from(catalogue["services"]))
        case.body["start"] = data.draw(st.sampled_from(catalogue["starts"]))
        case.body["phone"] = data.draw(st.sampled_from(PHONES))
        case.body["name"] = data.draw(st.sampled_from(NAMES) | st.text(min_size=1, max_size=120))
        if "staff" in case.body:
            case.body["staff"] = data.draw(st.sampled_from([None, *catalogue["staff"]]))


@pytest.mark.parametrize(("method", "path", "mode"), [
    (method, path, mode) for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    # The slug is any string, so no request to /services can break its schema.
    if (path, mode) != ("/api/b/{slug}/services", GenerationMode.NEGATIVE)
])
def test_api_never_fails_and_answers_as_documented(
    live_schema: schemathesis.BaseSchema, fuzz_server: LiveServer, catalogue: dict[str, Any],
    method: str, path: str, mode: GenerationMode,
) -> None:
    operation = live_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    @settings(max_examples=30, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    def exchange(case: schemathesis.Case, data: st.DataObject) -> None:
        if mode is GenerationMode.POSITIVE:
            # Negative cases keep their one broken part; aiming could repair it.
            aim(case, data, catalogue)
        case.call_and_validate(base_url=fuzz_server.url, checks=CHECKS, timeout=30)

    exchange()


def raw_post(url: str, path: str, body: bytes, headers: dict[str, str]
             ) -> tuple[int, dict[str, Any]]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    try:
        connection.putrequest("POST", path)
        for name, value in {"Content-Type": "application/json", "Connection": "close",
                            **headers}.items():
            connection.putheader(name, value)
        connection.endheaders()
        connection.send(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_oversized_and_malformed_bodies_on_the_live_server(fuzz_server: LiveServer) -> None:
    before = len(report(fuzz_server, SLUG)["appointments"])
    path = f"/api/b/{SLUG}/appointments"
    big = json.dumps({"service": 1, "start": "x", "name": "x" * 3_000_000, "phone": "1"}).encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece)
                       for piece in (big[i:i + 8192] for i in range(0, 40_000, 8192)))
    cases = [
        (big, {"Content-Length": str(len(big))}, 413),
        # No length at all: the body arrives in chunks and is measured as it is read.
        (chunked + b"0\r\n\r\n", {"Transfer-Encoding": "chunked"}, 413),
        # A length smaller than the body: only that much is read, and it is not JSON.
        (big[:20_000], {"Content-Length": "100"}, 400),
        (b"[" * 8000 + b"]" * 8000, {"Content-Length": "16000"}, 400),
        (b"\xff\xfe\x00", {"Content-Length": "3"}, 400),
    ]
    for body, headers, status in cases:
        answer = raw_post(fuzz_server.url, path, body, headers)
        assert answer[0] == status, (headers, answer)
        assert set(answer[1]) == {"error", "detail"}
    assert len(report(fuzz_server, SLUG)["appointments"]) == before


def test_fuzzing_left_the_business_consistent(fuzz_server: LiveServer) -> None:
    # Whatever got booked along the way is whole: no two bookings share a slot.
    appointments = report(fuzz_server, SLUG)["appointments"]
    slots = [(a["staff"], a["start"]) for a in appointments if a["status"] == "booked"]
    assert len(slots) == len(set(slots))
