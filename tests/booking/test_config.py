from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from booking.config import ConfigError, config_export, config_import
from booking.models import Appointment, Closure, Service, StaffMember, WorkingHours
from booking.services import appointment_book
from tenants.context import tenant_context
from tenants.models import Tenant
from tests.booking.conftest import BASE_SETUP, MakeShop, Shop, ada, base_setup, local
from tests.conftest import MakeTenant


def test_export_matches_the_imported_file(shop: Shop) -> None:
    exported = config_export()
    expected = base_setup()
    for member in expected["staff"]:
        member["hours"] = {day: member["hours"].get(day, [])
                           for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    assert exported == expected


def test_export_then_import_changes_nothing(shop: Shop) -> None:
    before = config_export()
    ids = (dict(Service.objects.values_list("name", "pk")),
           dict(StaffMember.objects.values_list("name", "pk")))
    config_import(json.loads(json.dumps(before)))
    assert config_export() == before
    assert ids == (dict(Service.objects.values_list("name", "pk")),
                   dict(StaffMember.objects.values_list("name", "pk")))


def test_import_updates_the_business_name_and_zone_everywhere(shop: Shop) -> None:
    setup = base_setup() | {"name": "Renamed Dental", "timezone": "Europe/London"}
    config_import(setup)
    tenant = Tenant.objects.get(pk=shop.tenant.pk)
    assert (tenant.name, tenant.timezone) == ("Renamed Dental", "Europe/London")
    exported = config_export()
    assert (exported["name"], exported["timezone"]) == ("Renamed Dental", "Europe/London")


def test_closures_are_local_times(shop: Shop) -> None:
    closure = Closure.objects.get()
    assert closure.start == local(2026, 3, 13, 0)
    assert closure.staff is None


def test_minimal_file_gets_default_policy(make_tenant: MakeTenant) -> None:
    tenant = make_tenant()
    with tenant_context(tenant):
        config_import({"name": "Tiny", "timezone": "UTC", "services": [], "staff": []})
        exported = config_export()
    assert exported["policy"] == BASE_SETUP["policy"]
    assert exported["closures"] == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.update(colour="blue"), "colour: unknown key"),
        (lambda s: s.pop("services"), "services: is required"),
        (lambda s: s["policy"].update(slot_step=15), "policy.slot_step: unknown key"),
        (lambda s: s["policy"].update(slot_step_minutes=0), "policy.slot_step_minutes"),
        (lambda s: s["services"][0].update(colour="x"), "services[0].colour: unknown key"),
        (lambda s: s["services"][1].update(duration_minutes="30"),
         "services[1].duration_minutes"),
        (lambda s: s["services"][1].update(price="12.345"), "services[1].price"),
        (lambda s: s["services"][1].update(price=-1), "services[1].price"),
        (lambda s: s["services"][1].update(name="Cleaning"), "services[1].name"),
        (lambda s: s["staff"][0]["hours"].update(mon=[["9:00", "12:00"]]),
         "staff[0].hours.mon[0][0]"),
        (lambda s: s["staff"][0]["hours"].update(mon=[["09:00", "25:00"]]),
         "staff[0].hours.mon[0][1]"),
        (lambda s: s["staff"][0]["hours"].update(mon=[["12:00", "09:00"]]),
         "staff[0].hours.mon[0]: the end must be after the start"),
        (lambda s: s["staff"][0]["hours"].update(mon=[["09:00", "12:00"], ["11:00", "13:00"]]),
         "staff[0].hours.mon: intervals overlap"),
        (lambda s: s["staff"][0]["hours"].update(monday=[]), "staff[0].hours.monday"),
        (lambda s: s["staff"][1]["services"].append("Massage"),
         "staff[1].services[2]: unknown service 'Massage'"),
        (lambda s: s["closures"][0].update(end="2026-03-12T00:00"), "closures[0].end"),
        (lambda s: s["closures"][0].update(start="13/03/2026"), "closures[0].start"),
        (lambda s: s["closures"][0].update(start="2026-03-13T00:00-05:00"), "closures[0].start"),
        (lambda s: s["closures"][0].update(staff="Zed"), "closures[0].staff"),
        (lambda s: s.update(timezone="Mars/Olympus"), "timezone"),
    ],
)
def test_invalid_file_is_refused_with_its_path_and_changes_nothing(
    shop: Shop, change: Any, message: str
) -> None:
    before = config_export()
    setup = base_setup()
    setup["staff"][0]["services"] = ["Cleaning"]  # a visible difference if it were applied
    change(setup)
    with pytest.raises(ConfigError) as caught:
        config_import(setup)
    assert any(message in error for error in caught.value.errors), caught.value.errors
    assert config_export() == before


def test_every_problem_is_reported_at_once(shop: Shop) -> None:
    setup = base_setup()
    setup["colour"] = "blue"
    setup["services"][0]["duration_minutes"] = 0
    setup["staff"][0]["hours"]["tue"] = [["nine", "five"]]
    with pytest.raises(ConfigError) as caught:
        config_import(setup)
    assert len(caught.value.errors) == 4


def test_removed_service_with_appointments_is_retired_not_deleted(shop: Shop) -> None:
    appointment_book(service_id=shop.services["Whitening"], start=local(2026, 3, 10, 9),
                     staff_id=shop.staff["Ana"], customer=ada(), channel="web")
    setup = base_setup()
    setup["services"] = [s for s in setup["services"] if s["name"] not in
                         ("Whitening", "Checkup")]
    for member in setup["staff"]:
        member["services"] = [n for n in member["services"] if n == "Cleaning"]
    summary = config_import(setup)
    assert summary.retired_services == ["Whitening"]
    whitening = Service.objects.get(name="Whitening")
    assert not whitening.active
    assert not Service.objects.filter(name="Checkup").exists()
    assert Appointment.objects.get().service == whitening
    assert [s["name"] for s in config_export()["services"]] == ["Cleaning"]


def test_removed_staff_with_appointments_is_retired(shop: Shop) -> None:
    appointment_book(service_id=shop.services["Checkup"], start=local(2026, 3, 10, 9),
                     staff_id=shop.staff["Ben"], customer=ada(), channel="web")
    setup = base_setup()
    setup["staff"] = setup["staff"][:1]
    config_import(setup)
    ben = StaffMember.objects.get(name="Ben")
    assert not ben.active
    assert not WorkingHours.objects.filter(staff=ben).exists()
    assert [m["name"] for m in config_export()["staff"]] == ["Ana"]


# --- the command --------------------------------------------------------------------------


def test_command_round_trip(make_shop: MakeShop, tmp_path: Path) -> None:
    shop = make_shop()
    out = StringIO()
    call_command("tenant_config", shop.tenant.slug, "--export", stdout=out)
    exported = json.loads(out.getvalue())
    file = tmp_path / "setup.json"
    exported["services"][0]["price"] = "125.00"
    file.write_text(json.dumps(exported))
    out = StringIO()
    call_command("tenant_config", shop.tenant.slug, "--import", str(file), stdout=out)
    assert "3 services, 2 staff, 1 closures" in out.getvalue()
    again = StringIO()
    call_command("tenant_config", shop.tenant.slug, "--export", stdout=again)
    assert json.loads(again.getvalue()) == exported


def test_command_refuses_an_invalid_file_naming_the_problem(make_shop: MakeShop,
                                                           tmp_path: Path) -> None:
    shop = make_shop()
    setup = base_setup()
    setup["services"][0]["colour"] = "blue"
    file = tmp_path / "setup.json"
    file.write_text(json.dumps(setup))
    with pytest.raises(CommandError, match=r"services\[0\]\.colour: unknown key"):
        call_command("tenant_config", shop.tenant.slug, "--import", str(file))
    file.write_text("{oops")
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("tenant_config", shop.tenant.slug, "--import", str(file))
    with pytest.raises(CommandError, match="No business"):
        call_command("tenant_config", "nobody-here", "--export")
