"""Sends each tenant app's queries to the database of the tenant in context."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Model

from tenants.context import current_alias
from tenants.db import is_tenant_alias


class CrossTenantAccess(RuntimeError):
    """An object loaded from one tenant's database was used under another tenant."""


def is_tenant_model(model: type[Model]) -> bool:
    return model._meta.app_label in settings.TENANT_APPS


class TenantRouter:
    def _route(self, model: type[Model], hints: dict[str, Any]) -> str | None:
        if not is_tenant_model(model):
            return None
        alias = current_alias()
        instance = hints.get("instance")
        instance_db = getattr(getattr(instance, "_state", None), "db", None)
        if instance_db is not None and instance_db != alias:
            raise CrossTenantAccess(
                f"{model._meta.label} object from {instance_db} used while {alias} is current"
            )
        return alias

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        return self._route(model, hints)

    def db_for_write(self, model: type[Model], **hints: Any) -> str | None:
        return self._route(model, hints)

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        # No foreign key crosses the control plane and a tenant database.
        if is_tenant_model(type(obj1)) != is_tenant_model(type(obj2)):
            return False
        return obj1._state.db == obj2._state.db

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None,
                      **hints: Any) -> bool:
        return (app_label in settings.TENANT_APPS) == is_tenant_alias(db)
