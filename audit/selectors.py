from __future__ import annotations

from django.db.models import QuerySet

from audit.models import AuditEntry


def audit_entries() -> QuerySet[AuditEntry]:
    """The tenant in context's log, newest first (its own database is the scope)."""
    return AuditEntry.objects.order_by("-at", "-id")
