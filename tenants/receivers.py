"""Keeps the per-process copies of tenant rows (``tenants.directory``) in step."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from tenants.directory import control_plane_changed
from tenants.models import Tenant


def on_tenant_saved_or_deleted(sender: type[Tenant], using: str = "default",
                               **kwargs: Any) -> None:
    control_plane_changed(using)


def connect() -> None:
    post_save.connect(on_tenant_saved_or_deleted, sender=Tenant,
                      dispatch_uid="tenants.directory.tenant.save")
    post_delete.connect(on_tenant_saved_or_deleted, sender=Tenant,
                        dispatch_uid="tenants.directory.tenant.delete")
