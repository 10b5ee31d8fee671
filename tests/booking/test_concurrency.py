"""Many customers racing for one slot: exactly one wins, the rest hear "taken"."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import combinations
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from booking.models import Appointment
from booking.services import CustomerDetails, appointment_book
from tenants.context import tenant_context
from tests.booking.conftest import MakeShop, Shop, local

THREADS = 50
TUESDAY = (2026, 3, 10)


def race(n: int, work: Callable[[int], object]) -> list[object]:
    """Run work(i) in n threads released at once; each result or exception, in order."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - the test inspects every outcome
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return results


def _book_in_thread(shop: Shop, service: str, start: datetime, staff: str | None,
                    i: int) -> Appointment:
    # Each thread enters the tenant context itself: contextvars do not cross threads.
    with tenant_context(shop.tenant):
        return appointment_book(
            service_id=shop.services[service],
            start=start,
            staff_id=shop.staff[staff] if staff else None,
            customer=CustomerDetails(name=f"Customer {i}", phone=f"+1212555{1000 + i:04d}"),
            channel=Appointment.Channel.CHAT,
        )


def _outcomes(results: list[object]) -> Counter[str]:
    return Counter(
        "ok" if isinstance(r, Appointment) else type(r).__name__ for r in results
    )


@pytest.mark.django_db(transaction=True)
def test_fifty_customers_booking_one_slot_get_one_booking(make_shop: MakeShop,
                                                          frozen: Any) -> None:
    shop = make_shop()
    start = local(*TUESDAY, 9)
    results = race(THREADS, lambda i: _book_in_thread(shop, "Checkup", start, "Ana", i))
    assert _outcomes(results) == {"ok": 1, "SlotTaken": THREADS - 1}
    with tenant_context(shop.tenant):
        assert Appointment.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_any_staff_race_fills_each_person_once(make_shop: MakeShop, frozen: Any) -> None:
    shop = make_shop()
    start = local(*TUESDAY, 9)
    results = race(THREADS, lambda i: _book_in_thread(shop, "Checkup", start, None, i))
    assert _outcomes(results) == {"ok": 2, "SlotTaken": THREADS - 2}
    winners = [r for r in results if isinstance(r, Appointment)]
    assert {w.staff_id for w in winners} == {shop.staff["Ana"], shop.staff["Ben"]}


@pytest.mark.django_db(transaction=True)
def test_overlapping_services_of_different_lengths_never_double_book(
    make_shop: MakeShop, frozen: Any
) -> None:
    shop = make_shop()
    # Every request covers 09:50 with Ana, counting the cleaning's 10-minute buffer.
    requests = [
        ("Cleaning", local(*TUESDAY, 9)),
        ("Cleaning", local(*TUESDAY, 9, 15)),
        ("Cleaning", local(*TUESDAY, 9, 45)),
        ("Checkup", local(*TUESDAY, 9, 30)),
        ("Checkup", local(*TUESDAY, 9, 45)),
        ("Whitening", local(*TUESDAY, 9)),
        ("Whitening", local(*TUESDAY, 9, 30)),
        ("Whitening", local(*TUESDAY, 9, 45)),
        ("Whitening", local(*TUESDAY, 9, 15)),
        ("Cleaning", local(*TUESDAY, 9, 30)),
    ]
    results = race(THREADS, lambda i: _book_in_thread(
        shop, requests[i % len(requests)][0], requests[i % len(requests)][1], "Ana", i))
    assert _outcomes(results) == {"ok": 1, "SlotTaken": THREADS - 1}


@pytest.mark.django_db(transaction=True)
def test_mixed_race_leaves_no_overlapping_blocks(make_shop: MakeShop, frozen: Any) -> None:
    shop = make_shop()
    starts = [local(*TUESDAY, 9) + timedelta(minutes=15 * k) for k in range(10)]
    services = ["Cleaning", "Checkup", "Whitening"]
    results = race(THREADS, lambda i: _book_in_thread(
        shop, services[i % 3], starts[(i * 7) % len(starts)], "Ana", i))
    outcomes = _outcomes(results)
    assert set(outcomes) <= {"ok", "SlotTaken", "OutsideHours"}
    assert outcomes["ok"] >= 1
    with tenant_context(shop.tenant):
        blocks = list(Appointment.objects.values_list("block_start", "block_end"))
    assert len(blocks) == outcomes["ok"]
    for (a0, a1), (b0, b1) in combinations(blocks, 2):
        assert a1 <= b0 or b1 <= a0, "two appointments overlap"


@pytest.mark.django_db(transaction=True)
def test_fifty_api_requests_for_one_slot_get_one_201(make_shop: MakeShop, frozen: Any) -> None:
    shop = make_shop()
    url = f"/api/b/{shop.tenant.slug}/appointments"
    start = local(*TUESDAY, 9).isoformat()

    def post(i: int) -> int:
        body = {"service": shop.services["Checkup"], "start": start, "staff": shop.staff["Ana"],
                "name": f"Customer {i}", "phone": f"+1212555{1000 + i:04d}"}
        response = Client().post(url, json.dumps(body), content_type="application/json")
        assert response["Content-Type"].startswith("application/json")
        return response.status_code

    statuses = race(THREADS, post)
    assert Counter(statuses) == {201: 1, 409: THREADS - 1}
    with tenant_context(shop.tenant):
        assert Appointment.objects.count() == 1



@pytest.mark.django_db(transaction=True)
def test_writers_of_one_business_queue_instead_of_timing_out(
    make_shop: MakeShop, frozen: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 1 ms busy timeout: any two of these bookings meeting at SQLite's write
    # lock would fail with "database is locked". Queued in the process first,
    # they never meet there, and all of them book.
    from smartscheduler import settings as project_settings
    from tenants.sqlite_backend.base import pool

    shop = make_shop()
    pool.discard()  # idle connections still carry the usual timeout
    monkeypatch.setattr(project_settings, "SQLITE_BUSY_TIMEOUT_MS", 1)
    starts = [local(*TUESDAY, 9) + timedelta(minutes=30 * i) for i in range(6)]
    plan = [(staff, start) for staff in ("Ana", "Ben") for start in starts]
    try:
        results = race(len(plan), lambda i: _book_in_thread(
            shop, "Checkup", plan[i][1], plan[i][0], i))
    finally:
        pool.discard()
    assert all(isinstance(result, Appointment) for result in results), results
    with tenant_context(shop.tenant):
        assert Appointment.objects.count() == len(plan)
