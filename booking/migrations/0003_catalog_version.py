"""The catalogue's version on the business profile, kept by database triggers.

Triggers rather than signals: bulk inserts, queryset updates and deletes, the
admin and hand-run SQL all change the catalogue too, and a cache that missed one
of them would let a booking through closed hours. The version is a random
value rather than a counter, so a database restored from a backup can never
meet a cached copy of other rows under the same number.

SQLite drops a table's triggers when a migration rebuilds the table (its
ALTER TABLE is a copy); tests/booking/test_catalog.py checks they are all there
on a freshly migrated database, so such a migration must add them back.
"""

from django.db import migrations, models

CATALOG_TABLES = (
    "booking_service",
    "booking_staffmember",
    "booking_staffmember_services",
    "booking_workinghours",
    "booking_closure",
)
EVENTS = ("INSERT", "UPDATE", "DELETE")


def _sqlite_statements() -> list[str]:
    return [
        f"CREATE TRIGGER IF NOT EXISTS {table}_catalog_{event.lower()} AFTER {event} ON {table} "
        "BEGIN UPDATE booking_businessprofile SET catalog_version = random(); END"
        for table in CATALOG_TABLES
        for event in EVENTS
    ]


def _postgresql_statements() -> list[str]:
    # BEFORE, once per statement: the profile row is locked before any catalogue
    # row, the order the booking path takes them in (no deadlock between them).
    statements = [
        "CREATE OR REPLACE FUNCTION booking_catalog_changed() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        "UPDATE booking_businessprofile "
        "SET catalog_version = floor(random() * 9.2e18)::bigint - 4600000000000000000; "
        "RETURN NULL; END $$"
    ]
    statements += [
        f"CREATE OR REPLACE TRIGGER {table}_catalog BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE "
        f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION booking_catalog_changed()"
        for table in CATALOG_TABLES
    ]
    return statements


def install_triggers(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        statements = _sqlite_statements()
    elif vendor == "postgresql":
        statements = _postgresql_statements()
    else:
        raise NotImplementedError(f"catalogue triggers for {vendor}")
    for statement in statements:
        schema_editor.execute(statement)


def remove_triggers(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    for table in CATALOG_TABLES:
        if vendor == "sqlite":
            for event in EVENTS:
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_catalog_{event.lower()}")
        else:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_catalog ON {table}")
    if vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS booking_catalog_changed()")


class Migration(migrations.Migration):

    dependencies = [
        ("booking", "0002_notifications_calendar_tokens"),
    ]

    operations = [
        migrations.AddField(
            model_name="businessprofile",
            name="catalog_version",
            field=models.BigIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(install_triggers, remove_triggers, elidable=False),
    ]
