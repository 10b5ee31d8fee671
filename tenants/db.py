"""One database per tenant, registered as a Django alias on first use.

Django scans every configured alias several times per request
(``connections.all()`` on request_started/request_finished, Channels around
every database call, ``make_view_atomic`` over ``connections.settings``). With
thousands of tenants in ``DATABASES`` that scan alone costs milliseconds. So
tenant aliases never enter ``connections.settings``: their settings are derived
from the alias itself, and the scans only see the tenant connections the
current thread actually holds open. A closed tenant connection is forgotten at
the next scan, so a long-lived worker thread holds wrappers only for tenants it
is using right now, however many it has served.

A tenant's database is a SQLite file under ``TENANT_DB_DIR`` by default, or,
when ``TENANT_DATABASE_URL`` is set, a PostgreSQL database of its own on that
server: the URL's database name with ``{id}`` replaced by the tenant's id
(32 hex digits; ``template`` for the template). A name without ``{id}`` is a
prefix: ``.../ss_tenant`` gives ``ss_tenant_<id>``.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import environ
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.utils import ConnectionHandler, load_backend
from django.utils.connection import ConnectionDoesNotExist

# SQLite with reusable idle connections (see tenants/sqlite_backend/base.py).
SQLITE_ENGINE = "tenants.sqlite_backend"
TENANT_ALIAS_PREFIX = "tenant_"
TEMPLATE_ALIAS = "tenant_template"
TEMPLATE_FILENAME = "_template.sqlite3"
POSTGRES_ENGINE = "django.db.backends.postgresql"
_ID_PLACEHOLDER = "{id}"
_TEMPLATE_ID = "template"
# A restore builds "<name>_new" beside the live database and parks the live
# one as "<name>_old" while they swap (tenants.lifecycle).
PG_RESTORE_SUFFIXES = ("_new", "_old")
# PostgreSQL silently truncates longer identifiers, which would let two tenants
# share one database.
_PG_MAX_NAME = 63 - max(len(suffix) for suffix in PG_RESTORE_SUFFIXES)
# Where CREATE/DROP DATABASE run: every PostgreSQL server has this database.
_PG_MAINTENANCE_DB = "postgres"

# Attribute of the thread-local connection store that lists the tenant aliases
# opened by this thread. Not a valid alias, so it can never collide with one.
_OPEN_TENANTS_ATTR = "__open_tenant_aliases"


def alias_for(tenant_id: uuid.UUID | str) -> str:
    if not isinstance(tenant_id, uuid.UUID):
        tenant_id = uuid.UUID(str(tenant_id))
    return f"{TENANT_ALIAS_PREFIX}{tenant_id.hex}"


def is_tenant_alias(alias: str) -> bool:
    return alias.startswith(TENANT_ALIAS_PREFIX)


def tenant_id_from_alias(alias: str) -> uuid.UUID:
    return uuid.UUID(alias.removeprefix(TENANT_ALIAS_PREFIX))


def tenant_db_dir() -> Path:
    return Path(settings.TENANT_DB_DIR)


def tenant_db_path(tenant_id: uuid.UUID | str) -> Path:
    tid = tenant_id if isinstance(tenant_id, uuid.UUID) else uuid.UUID(str(tenant_id))
    return tenant_db_dir() / f"{tid}.sqlite3"


def template_db_path() -> Path:
    return tenant_db_dir() / TEMPLATE_FILENAME


def tenants_on_postgres() -> bool:
    return bool(settings.TENANT_DATABASE_URL)


@functools.lru_cache(maxsize=4)
def _postgres_config(url: str) -> tuple[dict[str, Any], str]:
    """The connection settings every tenant shares, and the database name pattern."""
    config: dict[str, Any] = environ.Env.db_url_config(url)
    if config.get("ENGINE") != POSTGRES_ENGINE:
        raise ImproperlyConfigured("TENANT_DATABASE_URL must be a postgres:// URL.")
    pattern = str(config.get("NAME") or "")
    if not pattern:
        raise ImproperlyConfigured(
            "TENANT_DATABASE_URL needs a database name: a prefix, or a name with {id}."
        )
    if _ID_PLACEHOLDER not in pattern:
        pattern = f"{pattern}_{_ID_PLACEHOLDER}"
    if pattern.count(_ID_PLACEHOLDER) != 1:
        raise ImproperlyConfigured("TENANT_DATABASE_URL's database name may hold {id} once.")
    if len(pattern.replace(_ID_PLACEHOLDER, "0" * 32)) > _PG_MAX_NAME:
        raise ImproperlyConfigured(
            f"TENANT_DATABASE_URL's database name is too long: with the 32-character "
            f"tenant id it must fit in {_PG_MAX_NAME} characters."
        )
    options = dict(config.get("OPTIONS") or {})
    # The booking write path re-checks availability after taking its row
    # locks; only READ COMMITTED lets that re-check see the competing
    # booking that just committed. Set explicitly: a server default of
    # REPEATABLE READ would otherwise allow double bookings.
    if "isolation_level" in options:
        raise ImproperlyConfigured(
            "TENANT_DATABASE_URL must not set isolation_level: tenant databases "
            "run at READ COMMITTED."
        )
    from psycopg import IsolationLevel  # only installations with PostgreSQL need it

    options["isolation_level"] = IsolationLevel.READ_COMMITTED
    base = {
        "ENGINE": POSTGRES_ENGINE,
        "NAME": "",
        "USER": config.get("USER", ""),
        "PASSWORD": config.get("PASSWORD", ""),
        "HOST": config.get("HOST", ""),
        "PORT": config.get("PORT", ""),
        "ATOMIC_REQUESTS": False,  # must stay off: see DESIGN.md
        "AUTOCOMMIT": True,
        # Closed after each request unless the URL asks otherwise
        # (?conn_max_age=60): threads x active tenants connections otherwise.
        "CONN_MAX_AGE": config.get("CONN_MAX_AGE", 0),
        "CONN_HEALTH_CHECKS": False,
        "OPTIONS": options,
        "TIME_ZONE": None,
        "TEST": {"CHARSET": None, "COLLATION": None, "MIGRATE": True, "MIRROR": None, "NAME": None},
    }
    return base, pattern


def postgres_settings_for(name: str) -> dict[str, Any]:
    """Connection settings for database ``name`` on the tenants' PostgreSQL server."""
    base, _pattern = _postgres_config(settings.TENANT_DATABASE_URL)
    # OPTIONS copied: a connection must never change what its neighbours use.
    return {**base, "NAME": name, "OPTIONS": dict(base["OPTIONS"])}


def _postgres_name(tenant_id_hex: str) -> str:
    _base, pattern = _postgres_config(settings.TENANT_DATABASE_URL)
    return pattern.replace(_ID_PLACEHOLDER, tenant_id_hex)


def tenant_pg_name(tenant_id: uuid.UUID | str) -> str:
    """The tenant's PostgreSQL database name (with TENANT_DATABASE_URL set)."""
    tid = tenant_id if isinstance(tenant_id, uuid.UUID) else uuid.UUID(str(tenant_id))
    return _postgres_name(tid.hex)


def template_pg_name() -> str:
    return _postgres_name(_TEMPLATE_ID)


@contextmanager
def postgres_server_cursor() -> Iterator[CursorWrapper]:
    """An autocommit cursor on the tenants' PostgreSQL server, outside any tenant database.

    CREATE/DROP DATABASE cannot run inside a database they act on, nor in a
    transaction. The connection is this call's own and closed on exit.
    """
    settings_dict = postgres_settings_for(_PG_MAINTENANCE_DB)
    wrapper = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, "pg_server")
    try:
        with wrapper.cursor() as cursor:
            yield cursor
    finally:
        wrapper.close()


def _sqlite_settings(name: str) -> dict[str, Any]:
    # Every key Django's ConnectionHandler.configure_settings would fill in:
    # Django only fills defaults for aliases present at start-up.
    return {
        "ENGINE": SQLITE_ENGINE,
        "NAME": name,
        "USER": "",
        "PASSWORD": "",
        "HOST": "",
        "PORT": "",
        "ATOMIC_REQUESTS": False,  # must stay off: see DESIGN.md
        "AUTOCOMMIT": True,
        # Opening a SQLite file costs ~0.1 ms; closing after each request keeps
        # file handles bounded by threads, not threads x tenants.
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False,
        "OPTIONS": _tenant_sqlite_options(),
        "TIME_ZONE": None,
        "TEST": {"CHARSET": None, "COLLATION": None, "MIGRATE": True, "MIRROR": None, "NAME": None},
    }


def _tenant_sqlite_options() -> dict[str, Any]:
    from smartscheduler.settings import sqlite_options

    return sqlite_options(settings.TENANT_SQLITE_JOURNAL_MODE)


def settings_for_alias(alias: str) -> dict[str, Any]:
    on_postgres = tenants_on_postgres()
    if alias == TEMPLATE_ALIAS:
        if on_postgres:
            return postgres_settings_for(template_pg_name())
        return _sqlite_settings(str(template_db_path()))
    try:
        tenant_id = tenant_id_from_alias(alias)
    except ValueError:
        raise ConnectionDoesNotExist(f"The connection '{alias}' doesn't exist.") from None
    if on_postgres:
        # A missing database is an error on connect, never created on the fly.
        return postgres_settings_for(_postgres_name(tenant_id.hex))
    # mode=rw: a missing tenant file is an error, never a new empty database
    # (Django's SQLite backend always opens with uri=True).
    return _sqlite_settings(f"file:{tenant_db_path(tenant_id)}?mode=rw")


class TenantConnectionHandler(ConnectionHandler):
    """Django's connection handler plus on-demand tenant aliases (see module doc)."""

    _connections: Any  # asgiref Local set up by BaseConnectionHandler

    def _open_tenant_aliases(self) -> set[str]:
        try:
            opened: set[str] = getattr(self._connections, _OPEN_TENANTS_ATTR)
        except AttributeError:
            opened = set()
            setattr(self._connections, _OPEN_TENANTS_ATTR, opened)
        return opened

    def __getitem__(self, alias: str) -> BaseDatabaseWrapper:
        try:
            conn: BaseDatabaseWrapper = getattr(self._connections, alias)
            return conn
        except AttributeError:
            pass
        if not is_tenant_alias(alias):
            return super().__getitem__(alias)
        settings_dict = settings_for_alias(alias)
        backend = load_backend(settings_dict["ENGINE"])
        conn = backend.DatabaseWrapper(settings_dict, alias)
        setattr(self._connections, alias, conn)
        self._open_tenant_aliases().add(alias)
        return conn

    # ``__iter__`` stays Django's (static aliases only): the test framework and
    # commands use it for bookkeeping of configured databases, which tenant
    # databases are not. The per-request scans go through ``all()`` below.

    def all(self, initialized_only: bool = False) -> list[BaseDatabaseWrapper]:
        conns = [
            self[alias]
            for alias in self.settings
            if not initialized_only or hasattr(self._connections, alias)
        ]
        opened = self._open_tenant_aliases()
        for alias in list(opened):
            conn = getattr(self._connections, alias, None)
            if conn is None:
                opened.discard(alias)
                continue
            if conn.connection is None and not conn.in_atomic_block:
                # Closed and idle: drop the wrapper so it stops costing scans.
                delattr(self._connections, alias)
                opened.discard(alias)
                continue
            conns.append(conn)
        return conns

    @contextmanager
    def temporary(self, alias: str, settings_dict: dict[str, Any]) -> Iterator[BaseDatabaseWrapper]:
        """A connection known as ``alias`` to this thread only, closed and forgotten on exit.

        For Django machinery that looks connections up by alias (the migration
        recorder) on a database that is no tenant's yet, e.g. a restore in progress.
        """
        conn = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, alias)
        setattr(self._connections, alias, conn)
        try:
            yield conn
        finally:
            self.forget(alias)

    def forget(self, alias: str) -> None:
        """Close and drop this thread's connection to ``alias`` (e.g. before deleting its file)."""
        conn = getattr(self._connections, alias, None)
        name: str | None = None
        if conn is not None:
            name = conn.settings_dict["NAME"]
            conn.close()
            delattr(self._connections, alias)
        elif is_tenant_alias(alias):
            name = settings_for_alias(alias)["NAME"]
        self._open_tenant_aliases().discard(alias)
        if name is not None:
            from tenants.sqlite_backend.base import pool

            # The process keeps idle SQLite connections for reuse; a file about
            # to be deleted or replaced must not keep any.
            pool.discard(name)


def install() -> None:
    """Give Django's global ``connections`` object the tenant-aware behaviour.

    ``connections`` is imported by reference all over Django, so it cannot be
    replaced; switching its class keeps every reference valid.
    """
    if not isinstance(connections, TenantConnectionHandler):
        connections.__class__ = TenantConnectionHandler
