"""Each business's audit log: who changed what, kept in the business's own database.

Rows refer to control-plane users by id and keep a snapshot of the email, so the
log still says who acted after the account is renamed or erased. Values of
personal fields (customers' contact details, passwords) are never stored, only
the fact that they changed.

The app sits beside ``tenants``: it needs only the tenant context, and the
control plane (tenants, billing) and the dashboard (booking) record into it.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    class Action(models.TextChoices):
        CREATE = "create", "Created"
        CHANGE = "change", "Changed"
        DELETE = "delete", "Deleted"
        CANCEL = "cancel", "Cancelled"
        PLAN_CHANGE = "plan_change", "Plan changed"
        STATUS_CHANGE = "status_change", "Status changed"
        STAFF_ENTERED = "staff_entered", "Platform staff entered"

    at = models.DateTimeField(default=timezone.now)
    # A control-plane user id (no foreign key crosses databases); null for the
    # system and Stripe.
    actor_user_id = models.BigIntegerField(null=True, blank=True)
    # The user's email when they acted, or "system" / "stripe".
    actor = models.CharField(max_length=254)
    actor_is_platform_staff = models.BooleanField(default=False)
    action = models.CharField(max_length=16, choices=Action.choices)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_label = models.CharField(max_length=200, blank=True)
    # A list of {"field", "old", "new"}, {"field", "redacted": true} (a personal
    # field changed; its values are not kept) or {"field", "added"|"deleted"|
    # "changed": label} for rows edited alongside the object (e.g. hours).
    changes = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["-at", "-id"], name="audit_newest_first")]
        verbose_name = "activity"
        verbose_name_plural = "activity"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M}Z {self.actor} {self.action} {self.object_label}"

    def change_lines(self) -> list[str]:
        """The changes as short sentences for the owner's Activity page."""
        return [_describe(change) for change in self.changes if isinstance(change, dict)]


def _shown(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "(empty)"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _describe(change: dict[str, Any]) -> str:
    field = str(change.get("field", ""))
    if change.get("redacted"):
        return f"{field} changed"
    for kind in ("added", "deleted", "changed"):
        if kind in change:
            fields = change.get("fields") or []
            detail = f" ({', '.join(str(f) for f in fields)})" if fields else ""
            return f"{field} {kind}: {change[kind]}{detail}"
    return f"{field}: {_shown(change.get('old'))} → {_shown(change.get('new'))}"
