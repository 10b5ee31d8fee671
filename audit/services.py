"""Writing a business's audit log.

``audit_record`` writes into the database of the tenant in context, so a change
made in the dashboard is recorded in the same transaction as the change itself.
Control-plane events (plan, status) name the business explicitly and are
written after the control-plane transaction commits, so the log never claims a
change that was rolled back.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import DatabaseError, models, transaction
from django.http import HttpRequest

from audit.models import AuditEntry
from tenants.context import tenant_context
from tenants.provisioning import database_exists

if TYPE_CHECKING:
    from tenants.models import Tenant

logger = logging.getLogger(__name__)

Change = dict[str, Any]

# Field names whose values never reach the log, whatever the model: contact
# details and secrets. The log keeps only that they changed.
PERSONAL_FIELDS = frozenset({"password", "phone", "email", "customer_phone", "customer_email"})
MAX_VALUE_CHARS = 200


@dataclass(frozen=True)
class Actor:
    """Who did it: a user (id + email snapshot), or the system, or Stripe."""

    label: str
    user_id: int | None = None
    is_platform_staff: bool = False


SYSTEM = Actor(label="system")
STRIPE = Actor(label="stripe")


def is_platform_staff(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(
        user.is_authenticated and (getattr(user, "is_staff", False)
                                   or getattr(user, "is_superuser", False))
    )


def actor_for_user(user: AbstractBaseUser | AnonymousUser | None) -> Actor:
    if user is None or not user.is_authenticated:
        return SYSTEM
    email = getattr(user, "email", "") or user.get_username()
    return Actor(label=email, user_id=user.pk, is_platform_staff=is_platform_staff(user))


def actor_from_request(request: HttpRequest) -> Actor:
    return actor_for_user(getattr(request, "user", None))


# --- values -------------------------------------------------------------------------


def audit_value(value: Any) -> Any:
    """A JSON-safe, short rendering of a field value for the log."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, models.Model):
        return str(value)[:MAX_VALUE_CHARS]
    if isinstance(value, Mapping):
        return str(dict(value))[:MAX_VALUE_CHARS]
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        return sorted(str(audit_value(v)) for v in value)
    return str(value)[:MAX_VALUE_CHARS]


def field_change(field: str, old: Any, new: Any, *, personal: Iterable[str] = ()) -> Change:
    if field in PERSONAL_FIELDS or field in personal or "password" in field:
        return {"field": field, "redacted": True}
    return {"field": field, "old": audit_value(old), "new": audit_value(new)}


def _initial_value(form: forms.BaseForm, name: str) -> Any:
    """The field's value before the edit, as an object where the form holds only its id."""
    value = form.initial.get(name)
    field = form.fields.get(name)
    if value is None or not isinstance(field, forms.ModelChoiceField):
        return value
    if isinstance(field, forms.ModelMultipleChoiceField):
        objects = list(value)
        ids = [o for o in objects if not isinstance(o, models.Model)]
        if not ids or field.queryset is None:
            return objects
        return list(field.queryset.filter(pk__in=ids))
    if isinstance(value, models.Model):
        return value
    try:
        return field.to_python(value)
    except ValidationError:  # the old choice no longer exists
        return value


def form_changes(form: forms.BaseForm, *, personal: Iterable[str] = ()) -> list[Change]:
    """Old and new value of each field the form changed (only names for personal ones)."""
    personal = frozenset(personal)
    cleaned = getattr(form, "cleaned_data", {})
    return [
        field_change(name, _initial_value(form, name), cleaned.get(name), personal=personal)
        for name in form.changed_data
    ]


def related_changes(message: Sequence[Mapping[str, Any]]) -> list[Change]:
    """Rows edited alongside an object (inlines), from the admin's change message."""
    changes: list[Change] = []
    for part in message:
        for kind in ("added", "changed", "deleted"):
            detail = part.get(kind)
            if not isinstance(detail, Mapping) or "name" not in detail:
                continue
            change: Change = {"field": str(detail["name"]),
                              kind: str(detail.get("object", ""))[:MAX_VALUE_CHARS]}
            if kind == "changed":
                change["fields"] = [str(f) for f in detail.get("fields", [])]
            changes.append(change)
    return changes


# --- writing ------------------------------------------------------------------------


def audit_record(
    *,
    action: str,
    actor: Actor,
    object_type: str = "",
    object_id: object = "",
    label: str = "",
    changes: Sequence[Change] = (),
) -> AuditEntry:
    """Add an entry to the log of the tenant in context."""
    if action not in AuditEntry.Action.values:
        raise ValueError(f"unknown audit action {action!r}")
    return AuditEntry.objects.create(
        actor_user_id=actor.user_id,
        actor=actor.label[:254],
        actor_is_platform_staff=actor.is_platform_staff,
        action=action,
        object_type=object_type[:64],
        object_id=str(object_id)[:64],
        object_label=label[:200],
        changes=list(changes),
    )


def audit_record_for_tenant(tenant: Tenant, **entry: Any) -> AuditEntry | None:
    """Add an entry to ``tenant``'s log from outside its context (the control plane).

    The change it records has already happened, so a log that cannot be
    written is reported, not raised. A business whose database is gone
    (deleted) records nothing: opening it would create an empty file.
    """
    try:
        if not database_exists(tenant.pk):
            logger.warning("audit: tenant %s has no database; entry not recorded", tenant.pk)
            return None
        with tenant_context(tenant):
            return audit_record(**entry)
    except DatabaseError:
        logger.exception("audit: entry for tenant %s could not be recorded", tenant.pk)
        return None


def audit_record_on_commit(tenant: Tenant, **entry: Any) -> None:
    """Record into ``tenant``'s log once the current control-plane transaction commits."""
    transaction.on_commit(lambda: audit_record_for_tenant(tenant, **entry))
