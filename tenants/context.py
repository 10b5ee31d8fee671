"""The tenant in context: which business's database the current code works on.

A contextvar, so it follows sync and async code alike: it crosses
``sync_to_async``/``database_sync_to_async`` and stays inside one asyncio task.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from django.db import connections, transaction

from tenants.db import alias_for

if TYPE_CHECKING:
    from tenants.models import Tenant


class NoTenantInContext(RuntimeError):
    """Tenant data was touched with no tenant active: a bug, never a fall-through."""


_current: ContextVar[Tenant | None] = ContextVar("current_tenant", default=None)


@contextmanager
def tenant_context(tenant: Tenant) -> Iterator[Tenant]:
    """Make ``tenant`` current; the previous tenant (or none) comes back on exit."""
    if tenant is None or getattr(tenant, "pk", None) is None:
        raise ValueError("tenant_context needs a saved Tenant")
    token = _current.set(tenant)
    try:
        yield tenant
    finally:
        _current.reset(token)


def current_tenant() -> Tenant:
    tenant = _current.get()
    if tenant is None:
        raise NoTenantInContext(
            "Tenant data was used with no tenant in context; wrap the code in "
            "tenants.context.tenant_context(tenant)."
        )
    return tenant


def current_tenant_or_none() -> Tenant | None:
    return _current.get()


def current_alias() -> str:
    return alias_for(current_tenant().pk)


# Durable (outermost) write transactions of one business queue on a lock of
# this process before taking SQLite's write lock. A writer SQLite blocks polls,
# sleeping up to 100 ms between tries, so under load the database lock sat idle
# while writers slept and some gave up at the busy timeout (503s in the booking
# benchmark); a thread waiting here wakes the moment the previous one is done.
# Businesses share the locks by hash: a stripe is held for one short transaction.
# Reentrant, so a thread never waits on itself; durable transactions of two
# businesses are never nested, so two threads never wait on each other.
_WRITE_QUEUES = tuple(threading.RLock() for _ in range(64))


@contextmanager
def _queued_atomic(alias: str, tenant_key: object) -> Iterator[None]:
    with _WRITE_QUEUES[hash(tenant_key) % len(_WRITE_QUEUES)], transaction.atomic(
        using=alias, durable=True
    ):
        yield


def tenant_atomic(
    *, durable: bool = False, savepoint: bool = True
) -> AbstractContextManager[None]:
    """A transaction on the current tenant's database.

    ``transaction.atomic()`` alone would open it on ``default``; on SQLite the
    tenant alias begins IMMEDIATE, so a check-then-insert inside holds the
    write lock for the whole block. ``savepoint=False`` joins an enclosing
    transaction without a savepoint: an error then fails the whole of it.
    ``durable=True`` marks an outermost transaction; on SQLite it first queues
    behind this process's other writers of the business (see _WRITE_QUEUES).
    """
    alias = current_alias()
    if durable and connections[alias].vendor == "sqlite":
        return _queued_atomic(alias, current_tenant().pk)
    return transaction.atomic(using=alias, durable=durable, savepoint=savepoint)


def on_tenant_commit(func: Callable[[], object]) -> None:
    """Run ``func`` after the current tenant transaction commits (now, if none is open)."""
    transaction.on_commit(func, using=current_alias())
