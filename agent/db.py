"""Tenant database connections kept open between the chat turns of a thread.

Tenant aliases have ``CONN_MAX_AGE = 0``: a request's connection is closed when
it ends. For chat that meant every message opened the business's SQLite file
(three PRAGMAs), and closing the last connection to a file makes SQLite
checkpoint its WAL, with fsyncs: together about a tenth of a turn. Since then
the SQLite backend keeps idle connections per process (tenants/sqlite_backend),
which covers most of that for every request; what this module still spares a
turn is the wrapper's reconnect and, for PostgreSQL tenants, the connect round
trip. It overlaps that pool and is a candidate to fold into it. A turn runs
in a thread of a small pool, so the thread keeps the connection to the business
it just served for ``KEEP_OPEN_SECONDS`` and the next turn of that business in
that thread reuses it. Django's own ``close_if_unusable_or_obsolete`` still
decides: a kept connection only has a later ``close_at``, so one with errors,
an unfinished transaction or past its time is closed as before.

Bounds: a thread keeps at most ``MAX_KEPT_PER_THREAD`` tenant connections,
the least recently used closed first. A SQLite file replaced underneath a kept
connection (``tenant_restore`` renames a new file into place) is noticed by its
inode before the connection is reused, and the connection is closed instead;
a kept PostgreSQL connection is checked with a round trip before its reuse.
"""

from __future__ import annotations

import os
import threading
import time

from django.db import close_old_connections, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from tenants.db import is_tenant_alias, tenant_db_path, tenant_id_from_alias

KEEP_OPEN_SECONDS = 10.0
MAX_KEPT_PER_THREAD = 4

_FileId = tuple[int, int]  # (st_dev, st_ino)
# alias -> (the DB-API connection that was kept, the identity of its file then)
_kept = threading.local()


def _kept_here() -> dict[str, tuple[object, _FileId | None]]:
    try:
        kept: dict[str, tuple[object, _FileId | None]] = _kept.by_alias
    except AttributeError:
        kept = _kept.by_alias = {}
    return kept


def _file_id(conn: BaseDatabaseWrapper) -> _FileId | None:
    if conn.vendor != "sqlite":
        return None
    try:
        stat = os.stat(tenant_db_path(tenant_id_from_alias(conn.alias)))
    except (OSError, ValueError):
        return None
    return stat.st_dev, stat.st_ino


def turn_begins() -> None:
    """Before a turn in this thread: what ``database_sync_to_async`` does, sparing kept ones."""
    kept = _kept_here()
    for conn in connections.all(initialized_only=True):
        entry = kept.get(conn.alias)
        if entry is None or conn.connection is None:
            continue
        raw, file_id = entry
        if raw is not conn.connection or (
            _file_id(conn) != file_id if conn.vendor == "sqlite" else not conn.is_usable()
        ):
            # Not the connection this thread kept, its file was swapped, or the server
            # ended its session (a PostgreSQL restore does): start afresh.
            conn.close()
    close_old_connections()
    for alias in [a for a in kept if not _is_open(a)]:
        del kept[alias]


def turn_ends(alias: str) -> None:
    """After a turn on ``alias`` in this thread: keep that connection a while, tidy the rest."""
    kept = _kept_here()
    conn = _open_connection(alias)
    if conn is not None and is_tenant_alias(alias) and not conn.in_atomic_block:
        conn.close_at = time.monotonic() + KEEP_OPEN_SECONDS
        previous = kept.pop(alias, None)
        same = previous is not None and previous[0] is conn.connection
        kept[alias] = (conn.connection, previous[1] if same and previous else _file_id(conn))
    close_old_connections()
    for stale in [a for a in kept if not _is_open(a)]:
        del kept[stale]
    while len(kept) > MAX_KEPT_PER_THREAD:
        oldest = next(iter(kept))  # insertion order is last use
        del kept[oldest]
        if (oldest_conn := _open_connection(oldest)) is not None:
            oldest_conn.close()


def _open_connection(alias: str) -> BaseDatabaseWrapper | None:
    for conn in connections.all(initialized_only=True):
        if conn.alias == alias and conn.connection is not None:
            return conn
    return None


def _is_open(alias: str) -> bool:
    return _open_connection(alias) is not None
