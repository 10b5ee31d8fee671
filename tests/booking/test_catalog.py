"""The process's copy of a business's catalogue (booking.catalog) is never stale.

Every way of writing services, staff, who offers what, working hours and
closures (model saves, bulk inserts, queryset updates and deletes, hand-run
SQL) replaces the profile's catalog_version through database triggers, and the
next search or booking reads the catalogue again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, time, timedelta

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from booking import catalog, errors
from booking.models import BusinessProfile, Closure, Service, StaffMember, WorkingHours
from booking.selectors import engine_data, profile_get, service_get, slots_search
from tenants.context import current_alias
from tests.booking.conftest import NY, Shop, local
from tests.booking.test_services import book

TUESDAY = (2026, 3, 10)
CATALOG_TABLES = ("booking_service", "booking_staffmember", "booking_staffmember_services",
                  "booking_workinghours", "booking_closure")


def version() -> int:
    return BusinessProfile.objects.values_list("catalog_version", flat=True).get()


def raw(sql: str, params: list[object] | None = None) -> None:
    with connections[current_alias()].cursor() as cursor:
        cursor.execute(sql, params or [])


def test_a_new_business_has_a_trigger_for_each_write_to_each_catalogue_table(shop: Shop) -> None:
    with connections[current_alias()].cursor() as cursor:
        cursor.execute("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'")
        triggers = cursor.fetchall()
    assert sorted(triggers) == sorted(
        (table, f"{table}_catalog_{event}")
        for table in CATALOG_TABLES for event in ("insert", "update", "delete")
    )


def _first_staff() -> StaffMember:
    return StaffMember.objects.order_by("pk").first()  # type: ignore[return-value]


WRITES: dict[str, Callable[[Shop], object]] = {
    "service saved": lambda shop: Service.objects.get(pk=shop.services["Checkup"]).save(),
    "services updated in bulk": lambda shop: Service.objects.update(duration_minutes=45),
    "service created": lambda shop: Service.objects.create(name="Polish", duration_minutes=20),
    "staff deactivated in bulk": lambda shop: StaffMember.objects.filter(
        pk=shop.staff["Ben"]).update(active=False),
    "service offered": lambda shop: _first_staff().services.remove(shop.services["Checkup"]),
    "offers cleared": lambda shop: StaffMember.services.through.objects.all().delete(),
    "hours inserted in bulk": lambda shop: WorkingHours.objects.bulk_create([
        WorkingHours(staff_id=shop.staff["Ben"], weekday=5, start=time(9), end=time(12))]),
    "hours deleted": lambda shop: WorkingHours.objects.filter(weekday=0).delete(),
    "closure created": lambda shop: Closure.objects.create(
        start=local(2026, 3, 17, 0), end=local(2026, 3, 18, 0), reason="Inventory"),
    "closure deleted by hand-run SQL": lambda shop: raw("DELETE FROM booking_closure"),
    "hours changed by hand-run SQL": lambda shop: raw(
        "UPDATE booking_workinghours SET start = %s", ["10:00:00"]),
}


@pytest.mark.parametrize("write", list(WRITES), ids=list(WRITES))
def test_every_kind_of_catalogue_write_replaces_the_version(shop: Shop, write: str) -> None:
    before = version()
    WRITES[write](shop)
    assert version() != before


def test_appointments_and_customers_leave_the_version_alone(shop: Shop) -> None:
    before = version()
    appointment = book(shop, "Checkup", local(*TUESDAY, 9))
    appointment.customer.save()
    assert version() == before


def test_a_booking_reads_only_the_busy_times_while_the_catalogue_is_unchanged(shop: Shop) -> None:
    profile = profile_get()
    service = service_get(shop.services["Checkup"])
    assert service is not None
    span = (local(*TUESDAY, 0), local(*TUESDAY, 23))
    first = engine_data(profile=profile, service=service, span_start=span[0], span_end=span[1])
    with CaptureQueriesContext(connections[current_alias()]) as queries:
        again = engine_data(profile=profile, service=service, span_start=span[0],
                            span_end=span[1])
    assert [q["sql"].split(" FROM ")[1].split()[0] for q in queries.captured_queries] == [
        '"booking_appointment"'
    ]
    assert again == first


def test_a_closure_written_in_bulk_refuses_the_next_booking_at_once(shop: Shop) -> None:
    book(shop, "Checkup", local(*TUESDAY, 9))  # the catalogue is now cached
    Closure.objects.bulk_create([
        Closure(start=local(*TUESDAY, 11), end=local(*TUESDAY, 12), reason="Staff meeting")
    ])
    with pytest.raises(errors.Closed):
        book(shop, "Checkup", local(*TUESDAY, 11))
    starts = {s.start for s in slots_search(service_id=shop.services["Checkup"],
                                            start_date=datetime(*TUESDAY).date(),
                                            end_date=datetime(*TUESDAY).date())}
    assert local(*TUESDAY, 10, 30) in starts
    assert local(*TUESDAY, 11) not in starts


def test_hours_changed_by_hand_refuse_the_next_booking_at_once(shop: Shop) -> None:
    book(shop, "Checkup", local(*TUESDAY, 9))
    raw("UPDATE booking_workinghours SET start = %s WHERE start = %s", ["10:00:00", "09:00:00"])
    with pytest.raises(errors.OutsideHours):
        book(shop, "Checkup", local(*TUESDAY, 9, 30))
    assert book(shop, "Checkup", local(*TUESDAY, 10)).start == local(*TUESDAY, 10)


def test_a_service_switched_off_and_a_member_dropped_are_seen_at_once(shop: Shop) -> None:
    book(shop, "Whitening", local(*TUESDAY, 9), "Ben")
    StaffMember.objects.filter(pk=shop.staff["Ben"]).update(active=False)
    with pytest.raises(errors.InvalidInput):
        book(shop, "Checkup", local(*TUESDAY, 14), "Ben")
    Service.objects.filter(pk=shop.services["Whitening"]).update(active=False)
    with pytest.raises(errors.InvalidInput, match="No such service"):
        book(shop, "Whitening", local(*TUESDAY, 14), "Ana")


def test_a_restored_database_is_never_matched_with_a_copy_of_other_rows(shop: Shop) -> None:
    """Versions are random, not counted: two histories do not reach the same number."""
    seen = {version()}
    for minutes in (20, 25, 30, 35):
        Service.objects.filter(pk=shop.services["Checkup"]).update(duration_minutes=minutes)
        seen.add(version())
    assert len(seen) == 5


def test_a_search_reaching_back_past_the_kept_closures_reads_them(shop: Shop) -> None:
    service = service_get(shop.services["Checkup"])
    assert service is not None
    long_ago = local(2026, 1, 6, 0)  # the copy keeps closures of the last week only
    Closure.objects.create(start=long_ago, end=long_ago + timedelta(days=1), reason="Past")
    data = engine_data(profile=profile_get(), service=service, span_start=long_ago,
                       span_end=long_ago + timedelta(days=1))
    assert [(c.start, c.end) for c in data.closures] == [(long_ago, long_ago + timedelta(days=1))]


def test_one_process_keeps_a_bounded_number_of_businesses(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog, "MAX_CACHED", 1)
    monkeypatch.setattr(catalog, "_cached", OrderedDict())
    catalog.catalog_for(profile_get())
    assert len(catalog._cached) == 1
    # A profile not yet saved (no row to version) is never cached.
    catalog._cached.clear()
    catalog.catalog_for(BusinessProfile(display_name="Unsaved", timezone=NY.key))
    assert len(catalog._cached) == 0
