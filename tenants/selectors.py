from __future__ import annotations

import uuid

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from tenants.models import Membership, Tenant


def tenant_by_slug(slug: str) -> Tenant | None:
    return Tenant.objects.filter(slug=slug).first()


def memberships_of(user: User | AnonymousUser) -> QuerySet[Membership]:
    if not user.is_authenticated:
        return Membership.objects.none()
    return Membership.objects.filter(user=user).select_related("tenant").order_by("tenant__name")


def dashboard_tenant_for(
    user: User | AnonymousUser, preferred_id: str | None
) -> Tenant | None:
    """The tenant a logged-in member works on: the one they picked, else their first."""
    memberships = list(memberships_of(user))
    if not memberships:
        return None
    if preferred_id:
        try:
            wanted = uuid.UUID(preferred_id)
        except ValueError:
            wanted = None
        for membership in memberships:
            if membership.tenant_id == wanted:
                return membership.tenant
    return memberships[0].tenant
