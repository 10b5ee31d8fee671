"""Keeps the per-process copies of billing accounts (``billing.reconcile``) in step."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from billing.models import BillingAccount
from tenants.directory import control_plane_changed


def on_account_saved_or_deleted(sender: type[BillingAccount], using: str = "default",
                                **kwargs: Any) -> None:
    control_plane_changed(using)


def connect() -> None:
    post_save.connect(on_account_saved_or_deleted, sender=BillingAccount,
                      dispatch_uid="billing.directory.account.save")
    post_delete.connect(on_account_saved_or_deleted, sender=BillingAccount,
                        dispatch_uid="billing.directory.account.delete")
