"""The business's own data in the owners' dashboard."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from booking.models import BusinessProfile
from tenants.dashboard import TenantModelAdmin, dashboard_site, request_tenant


@admin.register(BusinessProfile, site=dashboard_site)
class BusinessProfileAdmin(TenantModelAdmin):
    list_display = ["display_name", "phone", "email", "timezone", "updated_at"]
    fieldsets = [
        (None, {"fields": ["display_name", "address", "phone", "email", "timezone"]}),
        (
            "Booking policy",
            {
                "fields": [
                    "slot_step_minutes",
                    "min_notice_minutes",
                    "max_days_ahead",
                    "cancellation_notice_minutes",
                    "reminder_offsets_minutes",
                    "waitlist_hold_minutes",
                ]
            },
        ),
    ]
    # Mirrors the business's zone on the control plane, which owns it.
    readonly_fields = ["timezone"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # One profile per business database.
        return super().has_add_permission(request) and not BusinessProfile.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        tenant = request_tenant(request)
        if tenant is not None:
            initial.setdefault("display_name", tenant.name)
        return initial

    def save_model(
        self, request: HttpRequest, obj: BusinessProfile, form: Any, change: bool
    ) -> None:
        tenant = request_tenant(request)
        if not change and tenant is not None:
            obj.timezone = tenant.timezone
        super().save_model(request, obj, form, change)
