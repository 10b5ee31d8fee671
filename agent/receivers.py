"""Keeps the assistant's cached business facts (``agent.facts``) in step with the database.

Any save or delete of the rows the facts are read from (profile, services,
staff and who offers what, working hours, closures, the chat settings) makes
the business's next turn read them again, once the change is committed.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Model
from django.db.models.signals import m2m_changed, post_delete, post_save

from agent.facts import facts_changed
from agent.models import ChatSettings
from booking.models import BusinessProfile, Closure, Service, StaffMember, WorkingHours
from tenants.db import is_tenant_alias, tenant_id_from_alias

FACT_MODELS: tuple[type[Model], ...] = (
    BusinessProfile, Service, StaffMember, WorkingHours, Closure, ChatSettings,
)


def _changed(using: str | None) -> None:
    if not using or not is_tenant_alias(using):
        return
    try:
        tenant_id = tenant_id_from_alias(using)
    except ValueError:
        return  # the template database: no business reads facts from it
    # After the commit: a turn reading before it would cache the old rows under
    # the new version. Outside a transaction this runs at once.
    # Robust: the change is committed either way, and a cache outage must not turn
    # the owner's save into an error (the facts' TTL then covers it).
    transaction.on_commit(lambda: facts_changed(tenant_id), using=using, robust=True)


def on_fact_saved_or_deleted(sender: type[Model], using: str | None = None, **kwargs: Any) -> None:
    _changed(using)


def on_services_offered_changed(sender: type[Model], action: str, using: str | None = None,
                                **kwargs: Any) -> None:
    if action.startswith("post_"):
        _changed(using)


def connect() -> None:
    for model in FACT_MODELS:
        uid = f"agent.facts.{model._meta.label_lower}"
        post_save.connect(on_fact_saved_or_deleted, sender=model, dispatch_uid=f"{uid}.save")
        post_delete.connect(on_fact_saved_or_deleted, sender=model, dispatch_uid=f"{uid}.delete")
    m2m_changed.connect(on_services_offered_changed, sender=StaffMember.services.through,
                        dispatch_uid="agent.facts.staff_services")
