"""The SQLite backend keeps idle connections for reuse, never a stale or busy one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from django.db import connections

from tenants.context import tenant_atomic, tenant_context
from tenants.db import alias_for, tenant_db_path
from tenants.models import Tenant
from tenants.sqlite_backend.base import ConnectionPool, pool
from tests.conftest import MakeTenant


def _db(tmp_path: Path, name: str = "a.sqlite3") -> str:
    path = tmp_path / name
    sqlite3.connect(path).close()
    return str(path)


def test_a_returned_connection_is_handed_out_again(tmp_path: Path) -> None:
    idle = ConnectionPool(per_file=2, total=8, max_idle_seconds=60)
    name = _db(tmp_path)
    conn = sqlite3.connect(name)
    assert idle.give(name, conn)
    assert idle.take(name) is conn
    assert idle.take(name) is None


def test_each_file_gets_only_its_own_connections(tmp_path: Path) -> None:
    idle = ConnectionPool(per_file=2, total=8, max_idle_seconds=60)
    a, b = _db(tmp_path, "a.sqlite3"), _db(tmp_path, "b.sqlite3")
    conn = sqlite3.connect(a)
    idle.give(a, conn)
    assert idle.take(b) is None
    assert idle.take(f"file:{a}?mode=rw") is None  # another name is another key
    assert idle.take(a) is conn


def test_a_replaced_file_is_never_served_from_the_old_handle(tmp_path: Path) -> None:
    idle = ConnectionPool(per_file=2, total=8, max_idle_seconds=60)
    name = _db(tmp_path)
    old = sqlite3.connect(name)
    old.execute("CREATE TABLE t (v TEXT)")
    old.execute("INSERT INTO t VALUES ('old')")
    old.commit()
    idle.give(name, old)
    replacement = tmp_path / "new.sqlite3"
    sqlite3.connect(replacement).close()
    replacement.replace(name)  # a restore or a rebuilt template swaps the file
    assert idle.take(name) is None
    with pytest.raises(sqlite3.ProgrammingError):
        old.execute("SELECT 1")  # closed, not leaked


def test_the_pool_is_bounded_per_file_and_in_total(tmp_path: Path) -> None:
    idle = ConnectionPool(per_file=2, total=3, max_idle_seconds=60)
    a, b = _db(tmp_path, "a.sqlite3"), _db(tmp_path, "b.sqlite3")
    a_conns = [sqlite3.connect(a) for _ in range(3)]
    assert [idle.give(a, c) for c in a_conns] == [True, True, False]
    b1, b2 = sqlite3.connect(b), sqlite3.connect(b)
    assert idle.give(b, b1) and idle.give(b, b2)
    # Over the total: the least recently used file's oldest connection went.
    assert len(idle) == 3
    with pytest.raises(sqlite3.ProgrammingError):
        a_conns[0].execute("SELECT 1")
    assert idle.take(a) is a_conns[1]


def test_expired_connections_are_closed_not_reused(tmp_path: Path) -> None:
    idle = ConnectionPool(per_file=2, total=8, max_idle_seconds=-1)
    name = _db(tmp_path)
    conn = sqlite3.connect(name)
    idle.give(name, conn)
    assert idle.take(name) is None
    with pytest.raises(sqlite3.ProgrammingError):
        conn.execute("SELECT 1")


@pytest.fixture
def tenant(make_tenant: MakeTenant) -> Tenant:
    return make_tenant()


def test_closing_a_tenant_connection_keeps_it_for_the_next_request(tenant: Tenant) -> None:
    alias = alias_for(tenant.pk)
    with tenant_context(tenant):
        connections[alias].ensure_connection()
        raw = connections[alias].connection
        connections[alias].close()
        connections[alias].ensure_connection()
        assert connections[alias].connection is raw
        connections[alias].close()


def test_an_open_transaction_is_rolled_back_before_reuse(tenant: Tenant) -> None:
    alias = alias_for(tenant.pk)
    with tenant_context(tenant):
        wrapper = connections[alias]
        wrapper.ensure_connection()
        raw = wrapper.connection
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("CREATE TABLE scratch (v INTEGER)")
        wrapper.close()
        assert not raw.in_transaction
        wrapper.ensure_connection()
        tables = raw.execute("SELECT name FROM sqlite_master WHERE name = 'scratch'").fetchall()
        assert tables == []
        wrapper.close()


def test_a_connection_closed_inside_an_atomic_block_is_not_pooled(tenant: Tenant) -> None:
    alias = alias_for(tenant.pk)
    with tenant_context(tenant):
        with pytest.raises(RuntimeError), tenant_atomic():
            raw = connections[alias].connection
            connections[alias].close()
            raise RuntimeError("abandon the block")
        with pytest.raises(sqlite3.ProgrammingError):
            raw.execute("SELECT 1")
        connections[alias].close()


def test_forgetting_a_tenant_drops_its_idle_connections(tenant: Tenant) -> None:
    alias = alias_for(tenant.pk)
    with tenant_context(tenant):
        connections[alias].ensure_connection()
        raw = connections[alias].connection
        connections[alias].close()
    connections.forget(alias)
    with pytest.raises(sqlite3.ProgrammingError):
        raw.execute("SELECT 1")
    assert tenant_db_path(tenant.pk).exists()
    assert pool.take(f"file:{tenant_db_path(tenant.pk)}?mode=rw") is None
