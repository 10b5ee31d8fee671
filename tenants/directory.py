"""Control-plane rows every public request reads, kept per process for a few seconds.

Each request to a booking page, the API, the chat or the voice webhooks starts by
finding its business by the slug in the URL, and a booking also reads the
business's billing account: two control-plane queries that return the same rows
almost every time. A process keeps them, keyed by a *generation*: a token in
Django's cache (shared by every process when ``REDIS_URL`` is set) that
``control_plane_changed`` replaces after the commit of any save or delete of a
tenant or billing account (``refresh_on_change``, connected in each app's
``ready``) and of the bulk updates that send no signal. A copy is used only under the generation
it was read in, and never for longer than ``DIRECTORY_TTL_SECONDS``, which
bounds what a write that bypassed all of that (hand-run SQL) or an unreachable
cache can leave behind.

Callers that write, or must not see a copy even for a moment (sign-up,
commands, the platform console), read the database directly
(``tenants.selectors.tenant_by_slug``).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import Model
from django.db.models.signals import post_delete, post_save

from tenants.models import Tenant

logger = logging.getLogger(__name__)

DIRECTORY_TTL_SECONDS = 5.0
GENERATION_KEY = "tenants:control-plane-generation"
MAX_ENTRIES = 4096

M = TypeVar("M", bound=Model)


def control_plane_generation() -> str | None:
    """The current generation; None when the cache cannot say (then nothing is reused)."""
    try:
        value = cache.get(GENERATION_KEY)
    except Exception:  # noqa: BLE001 - a cache outage must not fail the request: read the rows
        logger.warning("control-plane generation unavailable; reading rows afresh")
        return None
    if value is None:
        # First use (or evicted): start a generation so copies can be kept under it.
        value = secrets.token_hex(8)
        try:
            if not cache.add(GENERATION_KEY, value, timeout=None):
                value = cache.get(GENERATION_KEY)
        except Exception:  # noqa: BLE001 - as above
            return None
    return str(value) if value is not None else None


def control_plane_changed(using: str = DEFAULT_DB_ALIAS) -> None:
    """Make every process read tenants and billing accounts afresh, once ``using`` commits."""

    def bump() -> None:
        for copies in _all_copies:
            copies.clear()
        try:
            cache.set(GENERATION_KEY, secrets.token_hex(8), timeout=None)
        except Exception:  # noqa: BLE001 - the rows are committed; the TTL covers the rest
            logger.warning("could not replace the control-plane generation")

    # Now, so this process and its transaction see the change at once, and again
    # after the commit: a process that read the old rows in between kept them
    # under the first new generation.
    bump()
    transaction.on_commit(bump, using=using, robust=True)


def refresh_on_change(model: type[Model], *, uid: str) -> None:
    """Replace the generation after the commit of any save or delete of ``model``'s rows."""

    def changed(sender: type[Model], using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
        control_plane_changed(using)

    post_save.connect(changed, sender=model, weak=False, dispatch_uid=f"{uid}.save")
    post_delete.connect(changed, sender=model, weak=False, dispatch_uid=f"{uid}.delete")


class RowCopies(Generic[M]):
    """Rows of ``model`` found by one unique field, valid for one generation and a TTL.

    Each call returns an instance of its own (built from the kept column values),
    so a caller may change it without touching what other requests get.
    """

    def __init__(self, model: type[M], field: str) -> None:
        self._model = model
        self._field = field
        self._columns = tuple(f.attname for f in model._meta.concrete_fields)
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[str, float, tuple[Any, ...] | None]] = (
            OrderedDict()
        )
        _all_copies.append(self)

    def get(self, key: Hashable) -> M | None:
        row = self._row(key)
        return None if row is None else self._model.from_db(DEFAULT_DB_ALIAS, self._columns, row)

    def _row(self, key: Hashable) -> tuple[Any, ...] | None:
        generation = control_plane_generation()
        now = time.monotonic()
        if generation is not None:
            with self._lock:
                hit = self._entries.get(key)
            if hit is not None and hit[0] == generation and now - hit[1] < DIRECTORY_TTL_SECONDS:
                return hit[2]
        # Read after the generation: a change committed in between replaces the
        # generation too, so this copy is never used under the newer one.
        row = self._read(key)
        if generation is not None:
            with self._lock:
                self._entries[key] = (generation, now, row)
                self._entries.move_to_end(key)
                while len(self._entries) > MAX_ENTRIES:
                    self._entries.popitem(last=False)
        return row

    def _read(self, key: Hashable) -> tuple[Any, ...] | None:
        rows = self._model._default_manager.using(DEFAULT_DB_ALIAS).filter(**{self._field: key})
        return rows.values_list(*self._columns).first()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_all_copies: list[RowCopies[Any]] = []

_tenants: RowCopies[Tenant] = RowCopies(Tenant, "slug")


def public_tenant_by_slug(slug: str) -> Tenant | None:
    """The tenant at this public address (a fresh instance each call, safe to change)."""
    return _tenants.get(slug)
