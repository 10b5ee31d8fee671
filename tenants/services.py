"""Writes on the control plane: creating businesses and their owners."""

from __future__ import annotations

import logging

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from audit.models import AuditEntry
from audit.services import SYSTEM, Actor, audit_record_on_commit, field_change
from tenants.models import RESERVED_SLUGS, Membership, Plan, Tenant
from tenants.provisioning import drop_database, provision_database

logger = logging.getLogger(__name__)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def owner_get_or_create(*, email: str, password: str | None) -> tuple[User, bool]:
    """Owners log in by email; the username *is* the normalised email, so it is unique."""
    email = normalize_email(email)
    user = User.objects.filter(username=email).first()
    if user is not None:
        return user, False
    user = User(username=email, email=email)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    return user, True


def tenant_create(
    *,
    slug: str,
    name: str,
    timezone: str,
    owner_email: str,
    owner_password: str | None = None,
    plan: str = Plan.STARTER,
) -> Tenant:
    """A business with its owner and its own database, all or nothing.

    The database file is created inside the control-plane transaction and
    removed if anything after it fails, so a failed signup leaves no half tenant.
    """
    tenant = Tenant(slug=slug, name=name.strip(), timezone=timezone, plan=plan)
    tenant.full_clean()
    created_file = False
    try:
        with transaction.atomic():
            tenant.save(force_insert=True)
            owner, _ = owner_get_or_create(email=owner_email, password=owner_password)
            Membership.objects.create(user=owner, tenant=tenant, role=Membership.Role.OWNER)
            provision_database(tenant.id)
            created_file = True
    except BaseException:
        if created_file:
            drop_database(tenant.id)
        raise
    logger.info("created tenant %s (%s)", tenant.slug, tenant.id)
    return tenant


def suggest_slug(name: str) -> str:
    """A free slug derived from the business name ("Bright Smile" -> "bright-smile")."""
    base = slugify(name)[:44].strip("-") or "business"
    if len(base) < 3:
        base = f"{base}-biz"
    candidate = base
    n = 2
    while candidate in RESERVED_SLUGS or Tenant.objects.filter(slug=candidate).exists():
        candidate = f"{base}-{n}"
        n += 1
    return candidate


def tenant_set_status(*, tenant: Tenant, status: str, actor: Actor = SYSTEM) -> Tenant:
    if status not in Tenant.Status.values:
        raise ValidationError(f"unknown status {status!r}")
    old_status = tenant.status
    tenant.status = status
    tenant.save(update_fields=["status"])
    if old_status != status:
        tenant_change_record(
            tenant=tenant, action=AuditEntry.Action.STATUS_CHANGE, actor=actor,
            changes=[field_change("status", old_status, status)],
        )
    return tenant


def tenant_change_record(
    *, tenant: Tenant, action: str, actor: Actor, changes: list[dict[str, object]]
) -> None:
    """A change to the business's control-plane row, in the business's own audit log."""
    audit_record_on_commit(
        tenant, action=action, actor=actor, object_type="business", object_id=tenant.pk,
        label=tenant.name, changes=changes,
    )
