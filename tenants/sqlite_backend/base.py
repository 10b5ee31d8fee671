"""SQLite with idle connections kept for reuse, for the control plane and every tenant.

Under ASGI every request runs in a thread of its own and ends by closing its
connections (``CONN_MAX_AGE`` cannot help: connections are per thread). For
SQLite that close is the expensive part: when the last connection to a file
closes, SQLite checkpoints the WAL into the database and deletes it, with
fsyncs, and the next request pays for opening the file, registering Django's
functions and running the PRAGMAs again. Measured in bench/booking_cost.py, the
close alone added 4.8 ms of CPU to a 7.7 ms booking.

So a close hands the raw connection to a small per-process pool instead, and
the next connection to the same file takes it back. Only connections that are
idle are kept: outside any transaction (an open one is rolled back first) and
not inside an atomic block. The pool is bounded per file and in total, idle
connections expire, and a connection is only reused for the same file on disk
(same device and inode), so a database that was deleted or replaced (tenant
deletion, restore, a rebuilt template) is never served from a stale handle.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.backends.sqlite3 import base as sqlite_base


@dataclass
class _Idle:
    connection: sqlite3.Connection
    file_id: tuple[int, int] | None
    since: float


def _file_id(path: str) -> tuple[int, int] | None:
    """The file's identity on disk, or None when it is not a plain file path."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _path_of(name: str) -> str:
    # Tenant aliases open "file:<path>?mode=rw" URIs.
    if name.startswith("file:"):
        return name[len("file:"):].split("?", 1)[0]
    return name


class ConnectionPool:
    """Idle SQLite connections per database file, least recently used evicted first."""

    def __init__(self, *, per_file: int, total: int, max_idle_seconds: float) -> None:
        self.per_file = per_file
        self.total = total
        self.max_idle_seconds = max_idle_seconds
        self._lock = threading.Lock()
        self._idle: OrderedDict[str, list[_Idle]] = OrderedDict()
        self._count = 0

    def take(self, name: str) -> sqlite3.Connection | None:
        path = _path_of(name)
        now = time.monotonic()
        stale: list[sqlite3.Connection] = []
        found: sqlite3.Connection | None = None
        with self._lock:
            idle = self._idle.get(name)
            while idle:
                entry = idle.pop()
                self._count -= 1
                if now - entry.since > self.max_idle_seconds or entry.file_id != _file_id(path):
                    stale.append(entry.connection)
                    continue
                found = entry.connection
                break
            if idle is not None and not idle:
                del self._idle[name]
        for connection in stale:
            connection.close()
        return found

    def give(self, name: str, connection: sqlite3.Connection) -> bool:
        """Keep ``connection`` for reuse; False when the pool has no room for it."""
        if self.total <= 0 or self.per_file <= 0:
            return False
        file_id = _file_id(_path_of(name))
        if file_id is None:
            return False
        evicted: list[sqlite3.Connection] = []
        with self._lock:
            idle = self._idle.setdefault(name, [])
            if len(idle) >= self.per_file:
                return False
            idle.append(_Idle(connection, file_id, time.monotonic()))
            self._idle.move_to_end(name)
            self._count += 1
            while self._count > self.total:
                oldest_name, oldest = next(iter(self._idle.items()))
                evicted.append(oldest.pop(0).connection)
                self._count -= 1
                if not oldest:
                    del self._idle[oldest_name]
        for old in evicted:
            old.close()
        return True

    def discard(self, name: str | None = None) -> None:
        """Close the idle connections to ``name`` (every file when None)."""
        with self._lock:
            if name is None:
                dropped = [e for idle in self._idle.values() for e in idle]
                self._idle.clear()
            else:
                dropped = self._idle.pop(name, [])
            self._count -= len(dropped)
        for entry in dropped:
            entry.connection.close()

    def __len__(self) -> int:
        return self._count


pool = ConnectionPool(
    # As many as the HTTP handler keeps request threads (smartscheduler.handlers):
    # fewer, and a busy business's connections were closed and opened again
    # under load (bench.booking_http, 32 clients: 5.80 -> 5.46 ms of CPU a booking).
    per_file=getattr(settings, "SQLITE_POOL_PER_FILE", 32),
    total=getattr(settings, "SQLITE_POOL_TOTAL", 256),
    max_idle_seconds=getattr(settings, "SQLITE_POOL_MAX_IDLE_SECONDS", 60.0),
)


class DatabaseWrapper(sqlite_base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> sqlite3.Connection:
        reused = pool.take(self.settings_dict["NAME"])
        if reused is not None:
            # Migrations switch foreign keys off for their connection's session.
            reused.execute("PRAGMA foreign_keys = ON")
            return reused
        connection: sqlite3.Connection = super().get_new_connection(conn_params)
        return connection

    def _close(self) -> None:
        connection = self.connection
        if connection is None:
            return
        if (
            self.in_atomic_block
            or self.is_in_memory_db()
            or not self._reset_for_reuse(connection)
            or not pool.give(self.settings_dict["NAME"], connection)
        ):
            with self.wrap_database_errors:
                connection.close()

    def _reset_for_reuse(self, connection: sqlite3.Connection) -> bool:
        """Leave no transaction open; False when the connection is unfit for reuse."""
        try:
            if connection.in_transaction:
                connection.rollback()
        except sqlite3.Error:
            return False
        return True
