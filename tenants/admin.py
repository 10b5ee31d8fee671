"""The platform staff console (``/admin/``): every business, its members, its status."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.models import AuditEntry
from audit.services import actor_from_request, form_changes
from tenants.models import Membership, Tenant
from tenants.services import tenant_change_record, tenant_set_status


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "plan", "status", "created_at"]
    list_filter = ["status", "plan", "created_at"]
    search_fields = ["name", "slug", "phone_number", "memberships__user__email"]
    readonly_fields = ["id", "created_at"]
    fields = ["id", "name", "slug", "timezone", "plan", "status", "phone_number", "created_at"]
    ordering = ["name"]
    date_hierarchy = "created_at"
    inlines = [MembershipInline]
    actions = ["suspend", "activate"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A business needs its own database as well as this row: create it by
        # signup or `manage.py create_tenant`, which provision both.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting the row would orphan the business's database; cancel it instead.
        return False

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            return
        # Plan and status changes get entries of their own in the business's log.
        by_field = {c["field"]: c for c in form_changes(form)}
        actor = actor_from_request(request)
        for field, action in (("plan", AuditEntry.Action.PLAN_CHANGE),
                              ("status", AuditEntry.Action.STATUS_CHANGE)):
            if field in by_field:
                tenant_change_record(tenant=obj, action=action, actor=actor,
                                     changes=[by_field.pop(field)])
        if by_field:
            tenant_change_record(tenant=obj, action=AuditEntry.Action.CHANGE, actor=actor,
                                 changes=list(by_field.values()))

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Tenant], status: str) -> None:
        changed = 0
        for tenant in queryset:
            if tenant.status != status:
                tenant_set_status(tenant=tenant, status=status, actor=actor_from_request(request))
                changed += 1
        label = Tenant.Status(status).label.lower()
        self.message_user(request, f"{changed} business(es) now {label}.", messages.SUCCESS)

    @admin.action(description="Suspend selected businesses")
    def suspend(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._set_status(request, queryset, Tenant.Status.SUSPENDED)

    @admin.action(description="Activate selected businesses")
    def activate(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._set_status(request, queryset, Tenant.Status.ACTIVE)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "tenant__name", "tenant__slug"]
    raw_id_fields = ["user", "tenant"]
    list_select_related = ["user", "tenant"]
