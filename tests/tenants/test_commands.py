from __future__ import annotations

import io
import re
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.db.migrations.loader import MigrationLoader
from pytest_django.fixtures import Settings

import booking.migrations
from booking.models import BusinessProfile
from tenants.context import tenant_context
from tenants.db import TEMPLATE_ALIAS, alias_for, template_db_path, tenant_db_dir, tenant_db_path
from tenants.models import Membership, Tenant
from tests.conftest import MakeTenant
from tests.tenants.test_provisioning import (
    pending,
    rebuild_template,
    roll_back_latest_booking_migration,
    schema_and_migrations,
)

PROGRESS = re.compile(r"^\[(\d+)/(\d+)\] (\S+) \.\.\. (ok|FAILED: .+)$")


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def progress_lines(output: str) -> dict[str, str]:
    """slug -> "ok" / "FAILED: ..."; also checks the counter runs 1..n in order."""
    matches = [m for m in map(PROGRESS.match, output.splitlines()) if m]
    assert [int(m[1]) for m in matches] == list(range(1, len(matches) + 1))
    assert {int(m[2]) for m in matches} <= {len(matches)}
    return {m[3]: m[4] for m in matches}


def tenant_files() -> set[str]:
    if not tenant_db_dir().exists():
        return set()
    return {p.name for p in tenant_db_dir().iterdir() if not p.name.startswith("_template")}


@pytest.fixture
def template_restored(db: None) -> Iterator[None]:
    yield
    rebuild_template()


def add_tagline_column(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute("ALTER TABLE booking_businessprofile ADD COLUMN tagline varchar(200)")
    finally:
        conn.close()


# create_tenant


def test_create_tenant_provisions_business_owner_and_database(db: None) -> None:
    output = run(
        "create_tenant", "--slug", "bright-smile", "--name", "Bright Smile",
        "--timezone", "America/New_York", "--owner-email", "Owner@Example.com",
        "--owner-password", "correct-horse-battery-9", "--plan", "standard",
    )

    tenant = Tenant.objects.get(slug="bright-smile")
    assert f"id: {tenant.id}" in output and "slug: bright-smile" in output
    assert (tenant.name, tenant.timezone, tenant.plan) == (
        "Bright Smile", "America/New_York", "standard"
    )
    owner = User.objects.get(username="owner@example.com")
    assert owner.check_password("correct-horse-battery-9")
    assert Membership.objects.filter(user=owner, tenant=tenant, role="owner").exists()
    assert tenant_db_path(tenant.id).exists()
    with tenant_context(tenant):
        assert BusinessProfile.objects.count() == 0  # its database answers


def test_create_tenant_without_password_leaves_owner_without_one(db: None) -> None:
    output = run(
        "create_tenant", "--slug", "calm-cuts", "--name", "Calm Cuts", "--timezone", "Europe/Paris",
        "--owner-email", "hair@example.com",
    )

    owner = User.objects.get(username="hair@example.com")
    assert not owner.has_usable_password()
    assert "changepassword hair@example.com" in output
    assert Tenant.objects.get(slug="calm-cuts").plan == "starter"


def test_existing_owner_gets_a_second_business_and_keeps_their_password(
    make_tenant: MakeTenant,
) -> None:
    make_tenant("first-biz", owner_email="owner@example.com", owner_password="old-password-77x")

    output = run(
        "create_tenant", "--slug", "second-biz", "--name", "Second", "--timezone", "UTC",
        "--owner-email", "owner@example.com", "--owner-password", "another-password-88y",
    )

    owner = User.objects.get(username="owner@example.com")
    assert owner.check_password("old-password-77x")
    assert "left unchanged" in output
    assert set(owner.memberships.values_list("tenant__slug", flat=True)) == {
        "first-biz", "second-biz"
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"--slug": "taken-slug"}, "slug: Tenant with this Slug already exists"),
        ({"--slug": "Not_A_Slug"}, "slug: Use 3 to 50 lowercase letters"),
        ({"--slug": "admin"}, "slug: admin is reserved"),
        ({"--timezone": "Mars/Olympus_Mons"}, "timezone: Mars/Olympus_Mons is not a known IANA"),
        ({"--owner-email": "not-an-email"}, "owner email: Enter a valid email address"),
        ({"--owner-password": "12345"}, "owner password is too weak"),
        ({"--name": "  "}, "name: This field cannot be blank"),
        ({"--plan": "platinum"}, "invalid choice: 'platinum'"),
    ],
)
def test_create_tenant_refuses_bad_input_and_creates_nothing(
    make_tenant: MakeTenant, overrides: dict[str, str], message: str
) -> None:
    make_tenant("taken-slug", owner_email="first@example.com")
    counts = (Tenant.objects.count(), User.objects.count(), Membership.objects.count())
    files = tenant_files()
    options = {
        "--slug": "new-biz", "--name": "New Biz", "--timezone": "UTC",
        "--owner-email": "new@example.com", **overrides,
    }
    args = [item for pair in options.items() for item in pair]

    with pytest.raises(CommandError, match=re.escape(message)):
        run("create_tenant", *args)

    assert (Tenant.objects.count(), User.objects.count(), Membership.objects.count()) == counts
    assert tenant_files() == files


# migrate_tenants


@pytest.mark.parametrize("parallel", ["1", "2"])
@pytest.mark.django_db(transaction=True)
def test_migrate_tenants_brings_every_tenant_up_to_date(
    make_tenant: MakeTenant, parallel: str
) -> None:
    tenants = [make_tenant(slug) for slug in ("current", "behind-a", "behind-b", "behind-c")]
    removed = 0
    for tenant in tenants[1:]:
        removed += len(roll_back_latest_booking_migration(alias_for(tenant.pk)))
        assert pending(alias_for(tenant.pk))

    output = run("migrate_tenants", "--parallel", parallel)

    assert output.splitlines()[0].startswith("template ... ok")
    assert progress_lines(output) == {t.slug: "ok" for t in tenants}
    assert f"{removed} migrations applied" in output
    template = schema_and_migrations(template_db_path())
    for tenant in tenants:
        assert pending(alias_for(tenant.pk)) == []
        # Same tables, indexes and history as Django's own migration of the template.
        assert schema_and_migrations(tenant_db_path(tenant.pk)) == template
        with tenant_context(tenant):
            BusinessProfile.objects.create(display_name=tenant.name)
            assert BusinessProfile.objects.count() == 1


NEW_MIGRATION = """
from django.db import migrations, models
from django.db.models.functions import Concat


def fill_tagline(apps, schema_editor):
    # No tenant is in context while migrating: name the database being migrated.
    Profile = apps.get_model("booking", "BusinessProfile")
    Profile.objects.using(schema_editor.connection.alias).update(
        tagline=Concat(models.Value("Welcome to "), "display_name")
    )


class Migration(migrations.Migration):
    dependencies = [("booking", "{leaf}")]
    operations = [
        # Nullable without a default: SQLite adds it with ALTER TABLE ADD COLUMN.
        migrations.AddField("businessprofile", "tagline",
                            models.CharField(max_length=200, null=True)),
        migrations.RunPython(fill_tagline, migrations.RunPython.noop),
    ]
"""


def ship_new_booking_migration(tmp_path: Path, settings: Settings,
                               monkeypatch: pytest.MonkeyPatch) -> str:
    """Deploy code with one more booking migration than any database has seen."""
    leaf = next(n for n in MigrationLoader(None).graph.leaf_nodes() if n[0] == "booking")
    package = f"next_booking_migrations_{uuid.uuid4().hex}"
    shutil.copytree(Path(booking.migrations.__file__).parent, tmp_path / package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / package / "9001_profile_tagline.py").write_text(NEW_MIGRATION.format(leaf=leaf[1]))
    monkeypatch.syspath_prepend(str(tmp_path))
    settings.MIGRATION_MODULES = {"booking": package}
    return "booking.9001_profile_tagline"


@pytest.mark.parametrize("parallel", ["1", "2"])
@pytest.mark.usefixtures("template_restored")
@pytest.mark.django_db(transaction=True)
def test_new_migration_reaches_the_template_and_every_tenant(
    make_tenant: MakeTenant, parallel: str, tmp_path: Path, settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenants = [make_tenant(slug) for slug in ("north", "south", "east")]
    for tenant in tenants:
        with tenant_context(tenant):
            BusinessProfile.objects.create(display_name=tenant.name)
    connections.close_all()

    new = ship_new_booking_migration(tmp_path, settings, monkeypatch)
    assert pending(alias_for(tenants[0].pk)) == [new]

    output = run("migrate_tenants", "--parallel", parallel)

    assert output.splitlines()[0] == "template ... ok (1 applied)"
    assert progress_lines(output) == {t.slug: "ok" for t in tenants}
    template = schema_and_migrations(template_db_path())
    for tenant in tenants:
        assert pending(alias_for(tenant.pk)) == []
        assert schema_and_migrations(tenant_db_path(tenant.pk)) == template
        conn = sqlite3.connect(tenant_db_path(tenant.pk))
        try:
            assert conn.execute("SELECT tagline FROM booking_businessprofile").fetchall() == [
                (f"Welcome to {tenant.name}",)
            ]
        finally:
            conn.close()
    # Signups after the deploy start from the new template.
    later = make_tenant("west")
    assert pending(alias_for(later.pk)) == []


@pytest.mark.parametrize("parallel", ["1", "2"])
@pytest.mark.usefixtures("template_restored")
@pytest.mark.django_db(transaction=True)
def test_failing_tenants_are_reported_and_the_others_still_migrated(
    make_tenant: MakeTenant, parallel: str, tmp_path: Path, settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenants = {slug: make_tenant(slug) for slug in ("alpha", "broken", "gone", "omega")}
    broken = tenants["broken"]
    with tenant_context(broken):
        BusinessProfile.objects.create(display_name="Keep me")
    connections.close_all()
    # Someone patched this database by hand: the new migration's column is already there.
    add_tagline_column(tenant_db_path(broken.pk))
    tenant_db_path(tenants["gone"].pk).unlink()
    new = ship_new_booking_migration(tmp_path, settings, monkeypatch)

    out = io.StringIO()
    failed = r"2 tenant database\(s\) failed to migrate: broken, gone"
    with pytest.raises(CommandError, match=failed):
        call_command("migrate_tenants", "--parallel", parallel, stdout=out, stderr=io.StringIO())

    lines = progress_lines(out.getvalue())
    assert lines == {
        "alpha": "ok",
        "broken": "FAILED: OperationalError: duplicate column name: tagline",
        "gone": "FAILED: database file is missing",
        "omega": "ok",
    }
    assert "2 failed" in out.getvalue()
    for slug in ("alpha", "omega"):
        assert pending(alias_for(tenants[slug].pk)) == []
    # The failed migration was rolled back as a whole; the data is untouched.
    assert pending(alias_for(broken.pk)) == [new]
    with tenant_context(broken):
        assert list(BusinessProfile.objects.values_list("display_name", flat=True)) == ["Keep me"]
    assert not tenant_db_path(tenants["gone"].pk).exists()


@pytest.mark.usefixtures("template_restored")
def test_template_that_cannot_migrate_stops_before_any_tenant(
    make_tenant: MakeTenant, tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant = make_tenant("left-behind")
    connections.forget(TEMPLATE_ALIAS)  # type: ignore[attr-defined]
    add_tagline_column(template_db_path())
    new = ship_new_booking_migration(tmp_path, settings, monkeypatch)

    out = io.StringIO()
    with pytest.raises(CommandError, match="template database failed to migrate"):
        call_command("migrate_tenants", "--parallel", "1", stdout=out, stderr=io.StringIO())

    assert not PROGRESS.search(out.getvalue())
    assert pending(alias_for(tenant.pk)) == [new]


def test_migrate_tenants_with_no_tenants_migrates_the_template(db: None) -> None:
    rebuild_template()
    output = run("migrate_tenants")

    assert "template ... ok" in output
    assert "0 of 0 tenant databases up to date" in output
    assert pending(TEMPLATE_ALIAS) == []


def test_migrate_tenants_creates_the_template_on_a_fresh_installation(
    db: None, tmp_path: Path, settings: Settings
) -> None:
    settings.TENANT_DB_DIR = tmp_path / "var" / "tenants"

    output = run("migrate_tenants")

    applied = int(re.fullmatch(r"template \.\.\. ok \((\d+) applied\)", output.splitlines()[0])[1])
    assert applied > 0
    assert template_db_path() == tmp_path / "var" / "tenants" / "_template.sqlite3"
    assert pending(TEMPLATE_ALIAS) == []


def test_migrate_tenants_refuses_a_parallelism_below_one(db: None) -> None:
    with pytest.raises(CommandError, match="at least 1"):
        run("migrate_tenants", "--parallel", "0")
