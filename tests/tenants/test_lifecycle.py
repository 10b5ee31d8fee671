"""Backups, restores, exports and deletion of a business's data."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from booking.models import Appointment, Customer
from booking.selectors import appointments_all
from booking.services import CustomerDetails, appointment_book, appointment_cancel
from booking.waitlist import waitlist_join
from tenants.context import tenant_context
from tenants.db import tenant_db_path
from tenants.lifecycle import (
    APPOINTMENT_COLUMNS,
    CUSTOMER_COLUMNS,
    DELETED_NAME,
    LifecycleError,
    tenant_backup,
    tenant_backups,
    tenant_backups_dir,
)
from tenants.models import Membership, Tenant
from tests.booking.conftest import (
    NOW,
    MakeShop,
    Shop,
    ada,
    local,
    make_shop,  # noqa: F401
)
from tests.conftest import MakeTenant

TUESDAY = (2026, 3, 10)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def book(shop: Shop, start: datetime, *, name: str = "Ada Lovelace",
         phone: str = "+12125550100", staff: str | None = "Ana") -> Appointment:
    with tenant_context(shop.tenant):
        return appointment_book(
            service_id=shop.services["Checkup"],
            start=start,
            staff_id=shop.staff[staff] if staff else None,
            customer=CustomerDetails(name=name, phone=phone, email=""),
            channel=Appointment.Channel.WEB,
            now=NOW,
        )


def rows(path: Path, query: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return conn.execute(query).fetchall()


def live_state(shop: Shop) -> list[tuple[str, str, str]]:
    with tenant_context(shop.tenant):
        return [(a.reference, a.status, a.customer.phone) for a in appointments_all()]


@pytest.fixture
def backups(tmp_path: Path) -> Path:
    return tmp_path / "backups"


# --- backup and restore --------------------------------------------------------------


def test_backup_then_restore_brings_back_a_cancelled_booking(
    make_shop: MakeShop, backups: Path  # noqa: F811
) -> None:
    shop = make_shop()
    appointment = book(shop, local(*TUESDAY, 9))

    output = run("backup_tenant", shop.tenant.slug, "--dest", str(backups))

    [backup] = tenant_backups(shop.tenant.id, backups)
    assert backup.parent == backups / str(shop.tenant.id)
    assert backup.name.endswith("Z.sqlite3")
    assert output.strip() == f"{shop.tenant.slug} ... ok {backup}"
    assert rows(backup, "PRAGMA integrity_check") == [("ok",)]
    # One self-contained file: no WAL beside it, and not in WAL mode.
    assert sorted(p.name for p in backup.parent.iterdir()) == [backup.name]
    assert rows(backup, "PRAGMA journal_mode") == [("delete",)]

    with tenant_context(shop.tenant):
        appointment_cancel(appointment=appointment, by_customer=False, now=NOW)
    assert live_state(shop) == [(appointment.reference, "cancelled", "+12125550100")]

    run("restore_tenant", shop.tenant.slug, "--from", str(backup), "--yes")

    assert live_state(shop) == [(appointment.reference, "booked", "+12125550100")]
    path = tenant_db_path(shop.tenant.id)
    assert not Path(f"{path}.partial").exists()
    # The restored database takes bookings again.
    book(shop, local(*TUESDAY, 10), name="Grace Hopper", phone="+12125550101")
    assert len(live_state(shop)) == 2


def test_restore_needs_confirmation(make_shop: MakeShop, backups: Path) -> None:  # noqa: F811
    shop = make_shop()
    book(shop, local(*TUESDAY, 9))
    backup = tenant_backup(tenant=shop.tenant, dest=backups)
    book(shop, local(*TUESDAY, 10), name="Grace Hopper", phone="+12125550101")

    with pytest.raises(CommandError, match="--yes"):
        run("restore_tenant", shop.tenant.slug, "--from", str(backup))

    assert len(live_state(shop)) == 2


@pytest.mark.parametrize("damage", ["garbage", "truncated", "old_schema"])
def test_damaged_backup_is_refused_and_live_database_is_untouched(
    make_shop: MakeShop, backups: Path, tmp_path: Path, damage: str  # noqa: F811
) -> None:
    shop = make_shop()
    book(shop, local(*TUESDAY, 9))
    good = tenant_backup(tenant=shop.tenant, dest=backups)
    bad = tmp_path / "bad.sqlite3"
    if damage == "garbage":
        bad.write_bytes(b"this is not a database, just some bytes\n" * 200)
    elif damage == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    else:
        bad.write_bytes(good.read_bytes())
        with closing(sqlite3.connect(bad)) as conn, conn:
            conn.execute(
                "DELETE FROM django_migrations WHERE id = (SELECT max(id) FROM django_migrations)"
            )
    book(shop, local(*TUESDAY, 10), name="Grace Hopper", phone="+12125550101")
    before = live_state(shop)

    with pytest.raises(CommandError, match="nothing was changed"):
        run("restore_tenant", shop.tenant.slug, "--from", str(bad), "--yes")

    assert live_state(shop) == before
    assert len(before) == 2
    path = tenant_db_path(shop.tenant.id)
    assert rows(path, "PRAGMA integrity_check") == [("ok",)]
    assert not Path(f"{path}.partial").exists()


def test_restore_of_missing_file_is_refused(make_shop: MakeShop, tmp_path: Path) -> None:  # noqa: F811
    shop = make_shop()
    with pytest.raises(CommandError, match="does not exist"):
        run("restore_tenant", shop.tenant.slug, "--from", str(tmp_path / "nope.sqlite3"), "--yes")


def test_backup_keeps_only_the_newest_n(make_shop: MakeShop, backups: Path) -> None:  # noqa: F811
    shop = make_shop()
    made = []
    with time_machine.travel(NOW, tick=False) as traveller:
        for _ in range(4):
            made.append(tenant_backup(tenant=shop.tenant, dest=backups, keep=14))
            traveller.shift(timedelta(hours=1))
        run("backup_tenant", shop.tenant.slug, "--dest", str(backups), "--keep", "2")

    kept = tenant_backups(shop.tenant.id, backups)
    assert len(kept) == 2
    assert kept[0] == made[3]
    assert kept[1] not in made  # the one just taken


def test_backup_all_reports_each_business_and_carries_on_past_a_failure(
    make_tenant: MakeTenant, backups: Path
) -> None:
    first = make_tenant("alpha-biz")
    broken = make_tenant("beta-biz")
    last = make_tenant("gamma-biz")
    tenant_db_path(broken.id).unlink()  # lost its database file

    out = io.StringIO()
    with pytest.raises(CommandError, match="1 backup"):
        call_command("backup_tenant", "--all", "--dest", str(backups), stdout=out)

    lines = {line.split(" ... ")[0]: line.split(" ... ")[1] for line in out.getvalue().splitlines()}
    assert lines["alpha-biz"].startswith("ok ")
    assert lines["beta-biz"].startswith("FAILED: ")
    assert lines["gamma-biz"].startswith("ok ")
    assert len(tenant_backups(first.id, backups)) == 1
    assert len(tenant_backups(last.id, backups)) == 1
    assert not tenant_backups_dir(broken.id, backups).exists() or not tenant_backups(
        broken.id, backups
    )


def test_backup_command_needs_a_slug_or_all(db: None) -> None:
    with pytest.raises(CommandError, match="slug or --all"):
        run("backup_tenant")
    with pytest.raises(CommandError, match="No business"):
        run("backup_tenant", "no-such-biz")


def test_backup_of_business_a_never_holds_business_b_rows(
    make_shop: MakeShop, backups: Path  # noqa: F811
) -> None:
    a = make_shop()
    b = make_shop()
    book(a, local(*TUESDAY, 9), name="Alice Only", phone="+12125550111")
    theirs = book(b, local(*TUESDAY, 9), name="Bob Elsewhere", phone="+12125550122")

    run("backup_tenant", a.tenant.slug, "--dest", str(backups))

    [backup] = tenant_backups(a.tenant.id, backups)
    customers = rows(backup, f"SELECT name, phone FROM {Customer._meta.db_table}")
    assert customers == [("Alice Only", "+12125550111")]
    references = {r for (r,) in rows(backup, f"SELECT reference FROM {Appointment._meta.db_table}")}
    assert theirs.reference not in references
    assert len(references) == 1
    assert not tenant_backups_dir(b.tenant.id, backups).exists()


@pytest.mark.django_db(transaction=True)
def test_backup_taken_while_bookings_are_written_is_a_consistent_snapshot(
    make_shop: MakeShop, backups: Path  # noqa: F811
) -> None:
    shop = make_shop()
    starts = [
        local(2026, 3, day, hour, minute)
        for day in (3, 4, 5, 6, 9, 10, 11, 12)
        for hour in (9, 10, 11, 13, 14, 15, 16)
        for minute in (0, 30)
    ]
    some_booked = threading.Event()
    stop = threading.Event()
    errors: list[BaseException] = []
    booked: list[int] = []

    def keep_booking() -> None:
        try:
            # Contextvars do not cross threads: the writer enters the tenant itself.
            with tenant_context(shop.tenant):
                for n, start in enumerate(starts):
                    for staff in ("Ana", "Ben"):
                        if stop.is_set():
                            return
                        k = 2 * n + (staff == "Ben")
                        appointment = appointment_book(
                            service_id=shop.services["Checkup"], start=start,
                            staff_id=shop.staff[staff],
                            customer=CustomerDetails(name=f"Customer {k}",
                                                     phone=f"+1212555{2000 + k:04d}"),
                            channel=Appointment.Channel.CHAT, now=NOW,
                        )
                        booked.append(appointment.pk)
                        if len(booked) >= 5:
                            some_booked.set()
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            some_booked.set()
            connections.close_all()

    appointments = Appointment._meta.db_table
    customers = Customer._meta.db_table

    def verified_ids(backup: Path) -> list[int]:
        assert rows(backup, "PRAGMA integrity_check") == [("ok",)]
        assert rows(backup, "PRAGMA foreign_key_check") == []
        orphans = rows(
            backup,
            f"SELECT a.id FROM {appointments} a LEFT JOIN {customers} c "
            f"ON c.id = a.customer_id WHERE c.id IS NULL",
        )
        assert orphans == []
        ids = [pk for (pk,) in rows(backup, f"SELECT id FROM {appointments} ORDER BY id")]
        # Each booking saves its own customer in the same transaction.
        assert rows(backup, f"SELECT count(*) FROM {customers}") == [(len(ids),)]
        return ids

    snapshots: list[list[int]] = []
    writer = threading.Thread(target=keep_booking)
    writer.start()
    try:
        assert some_booked.wait(timeout=60)
        # Back up until three different states were caught mid-stream; the
        # writer has hundreds of bookings to go, so it is still writing.
        while writer.is_alive() and len({len(s) for s in snapshots}) < 3:
            assert len(snapshots) < 1000
            snapshots.append(
                verified_ids(tenant_backup(tenant=shop.tenant, dest=backups, keep=3))
            )
        writer_was_running = writer.is_alive()
    finally:
        stop.set()
        writer.join(timeout=120)
    assert not errors
    assert writer_was_running, "the writer finished before the backups: nothing was proven"

    with tenant_context(shop.tenant):
        live_ids = list(Appointment.objects.order_by("pk").values_list("pk", flat=True))
    counts = [len(ids) for ids in snapshots]
    assert counts == sorted(counts)
    assert counts[0] >= 5
    for ids in snapshots:
        # Exactly the first k appointments the writer committed, no gaps.
        assert ids == live_ids[: len(ids)]
    assert len(tenant_backups(shop.tenant.id, backups)) == min(3, len(snapshots))


def test_failed_integrity_check_leaves_no_backup(
    make_shop: MakeShop, backups: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    import tenants.lifecycle as lifecycle

    shop = make_shop()
    monkeypatch.setattr(
        lifecycle, "_integrity_problem", lambda conn: "*** in database main *** page 3 bad"
    )
    with pytest.raises(LifecycleError, match="integrity"):
        tenant_backup(tenant=shop.tenant, dest=backups)
    folder = tenant_backups_dir(shop.tenant.id, backups)
    assert list(folder.iterdir()) == []


# --- export --------------------------------------------------------------------------


def test_export_writes_setup_appointments_customers_and_waitlist(
    make_shop: MakeShop, tmp_path: Path  # noqa: F811
) -> None:
    shop = make_shop()
    other = make_shop()
    book(other, local(*TUESDAY, 9), name="Not Ours", phone="+12125550199")
    appointment = book(shop, local(*TUESDAY, 9))
    with tenant_context(shop.tenant):
        waitlist_join(
            customer=CustomerDetails(name="Grace Hopper", phone="+12125550101", email=""),
            service_id=shop.services["Cleaning"], now=NOW,
        )
    dest = tmp_path / "export"

    output = run("export_tenant", shop.tenant.slug, "--dest", str(dest))

    slug = shop.tenant.slug
    assert output.split() == [
        str(dest / f"{slug}.json"),
        str(dest / f"{slug}-appointments.csv"),
        str(dest / f"{slug}-customers.csv"),
    ]
    document = json.loads((dest / f"{slug}.json").read_text())
    assert document["business"]["slug"] == slug
    assert document["setup"]["name"] == "Test Dental"
    services = [s["name"] for s in document["setup"]["services"]]
    assert services == ["Cleaning", "Checkup", "Whitening"]
    [exported] = document["appointments"]
    assert exported["reference"] == appointment.reference
    assert exported["start"] == "2026-03-10T09:00:00-04:00"
    assert exported["customer_phone"] == "+12125550100"
    assert {c["name"] for c in document["customers"]} == {"Ada Lovelace", "Grace Hopper"}
    [entry] = document["waitlist"]
    assert (entry["customer_name"], entry["service"], entry["status"]) == (
        "Grace Hopper", "Cleaning", "waiting"
    )

    with open(dest / f"{slug}-appointments.csv", newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == list(APPOINTMENT_COLUMNS)
    assert len(table) == 2
    row = dict(zip(table[0], table[1], strict=True))
    assert row["reference"] == appointment.reference
    assert (row["service"], row["staff"], row["status"]) == ("Checkup", "Ana", "booked")
    assert (row["customer_name"], row["customer_phone"]) == ("Ada Lovelace", "+12125550100")
    assert row["cancelled_at"] == ""

    with open(dest / f"{slug}-customers.csv", newline="") as handle:
        customers = list(csv.DictReader(handle))
    assert list(customers[0]) == list(CUSTOMER_COLUMNS)
    assert {(c["name"], c["phone"]) for c in customers} == {
        ("Ada Lovelace", "+12125550100"), ("Grace Hopper", "+12125550101")
    }
    assert "Not Ours" not in (dest / f"{slug}.json").read_text()


def test_export_cells_never_start_a_spreadsheet_formula(
    make_shop: MakeShop, tmp_path: Path  # noqa: F811
) -> None:
    shop = make_shop()
    with tenant_context(shop.tenant):
        appointment_book(
            service_id=shop.services["Checkup"], start=local(*TUESDAY, 9),
            customer=ada(), channel=Appointment.Channel.WEB, now=NOW,
            notes='=HYPERLINK("http://evil.example","x")',
        )
    run("export_tenant", shop.tenant.slug, "--dest", str(tmp_path))
    with open(tmp_path / f"{shop.tenant.slug}-appointments.csv", newline="") as handle:
        [row] = list(csv.DictReader(handle))
    assert row["notes"] == "'=HYPERLINK(\"http://evil.example\",\"x\")"
    assert row["customer_phone"] == "+12125550100"


# --- deletion ------------------------------------------------------------------------


@pytest.fixture
def doomed(make_shop: MakeShop, make_tenant: MakeTenant) -> Iterator[Shop]:  # noqa: F811
    shop = make_shop(slug="doomed-biz", owner_email="solo@example.com")
    # A second owner who also runs another business keeps their account.
    make_tenant("other-biz", owner_email="shared@example.com")
    shared = User.objects.get(username="shared@example.com")
    Membership.objects.create(user=shared, tenant=shop.tenant, role=Membership.Role.OWNER)
    book(shop, local(*TUESDAY, 9))
    tenant_backup(tenant=shop.tenant)  # default location: VAR_DIR/backups
    yield shop


def test_delete_removes_files_and_anonymises_records(doomed: Shop) -> None:
    tenant_id = doomed.tenant.id
    assert tenant_backups(tenant_id)

    run("delete_tenant", "doomed-biz", "--yes")

    path = tenant_db_path(tenant_id)
    assert not any(Path(f"{path}{s}").exists() for s in ("", "-wal", "-shm", ".partial"))
    assert not tenant_backups_dir(tenant_id).exists()
    tenant = Tenant.objects.get(pk=tenant_id)
    assert tenant.status == Tenant.Status.CANCELLED
    assert tenant.name == DELETED_NAME
    assert tenant.slug == f"deleted-{tenant_id.hex[:12]}"
    assert not Membership.objects.filter(tenant=tenant).exists()

    assert not User.objects.filter(username="solo@example.com").exists()
    solo = User.objects.get(username__startswith="deleted-user-")
    assert (solo.email, solo.is_active, solo.has_usable_password()) == ("", False, False)

    shared = User.objects.get(username="shared@example.com")
    assert shared.is_active and shared.email == "shared@example.com"
    assert list(shared.memberships.values_list("tenant__slug", flat=True)) == ["other-biz"]


def test_deleted_slug_can_be_taken_again(doomed: Shop, make_tenant: MakeTenant) -> None:
    run("delete_tenant", "doomed-biz", "--yes")

    newcomer = make_tenant("doomed-biz", owner_email="new@example.com")

    assert newcomer.id != doomed.tenant.id
    assert tenant_db_path(newcomer.id).exists()
    with tenant_context(newcomer):
        assert Appointment.objects.count() == 0


def test_delete_is_idempotent(doomed: Shop) -> None:
    tenant_id = str(doomed.tenant.id)
    run("delete_tenant", "doomed-biz", "--yes")
    first = Tenant.objects.values().get(pk=tenant_id)
    users = list(User.objects.order_by("pk").values("username", "email", "is_active"))

    run("delete_tenant", tenant_id, "--yes")

    assert Tenant.objects.values().get(pk=tenant_id) == first
    assert list(User.objects.order_by("pk").values("username", "email", "is_active")) == users


def test_delete_needs_confirmation(doomed: Shop) -> None:
    with pytest.raises(CommandError, match="--yes"):
        run("delete_tenant", "doomed-biz")

    assert tenant_db_path(doomed.tenant.id).exists()
    assert Tenant.objects.get(pk=doomed.tenant.id).slug == "doomed-biz"
    assert tenant_backups(doomed.tenant.id)
