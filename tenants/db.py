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
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import ConnectionHandler, load_backend
from django.utils.connection import ConnectionDoesNotExist

# SQLite with reusable idle connections (see tenants/sqlite_backend/base.py).
SQLITE_ENGINE = "tenants.sqlite_backend"
TENANT_ALIAS_PREFIX = "tenant_"
TEMPLATE_ALIAS = "tenant_template"
TEMPLATE_FILENAME = "_template.sqlite3"

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
    if alias == TEMPLATE_ALIAS:
        return _sqlite_settings(str(template_db_path()))
    try:
        tenant_id = tenant_id_from_alias(alias)
    except ValueError:
        raise ConnectionDoesNotExist(f"The connection '{alias}' doesn't exist.") from None
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

    def forget(self, alias: str) -> None:
        """Close and drop this thread's connection to ``alias`` (e.g. before deleting its file)."""
        conn = getattr(self._connections, alias, None)
        if conn is not None:
            conn.close()
            delattr(self._connections, alias)
        self._open_tenant_aliases().discard(alias)
        from tenants.sqlite_backend.base import pool

        # The process keeps idle connections for reuse; a file about to be
        # deleted or replaced must not keep any.
        pool.discard(settings_for_alias(alias)["NAME"])


def install() -> None:
    """Give Django's global ``connections`` object the tenant-aware behaviour.

    ``connections`` is imported by reference all over Django, so it cannot be
    replaced; switching its class keeps every reference valid.
    """
    if not isinstance(connections, TenantConnectionHandler):
        connections.__class__ = TenantConnectionHandler
