"""Calls in the owners' dashboard: a read-only log with a link to each transcript."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from tenants.dashboard import TenantModelAdmin, dashboard_site
from voice.models import Call

CALL_FIELDS = ("started_at", "caller", "called", "status", "outcome", "duration_seconds",
               "ended_at", "transcript", "recording_url", "transcription")


@admin.register(Call, site=dashboard_site)
class CallAdmin(TenantModelAdmin):
    """A record of what happened: nobody edits it (an owner may delete one)."""

    list_display = ["started_at", "caller", "duration", "outcome", "status", "transcript"]
    list_filter = ["outcome", "status"]
    search_fields = ["caller"]
    date_hierarchy = "started_at"
    fields = CALL_FIELDS
    readonly_fields = CALL_FIELDS
    list_select_related = ["conversation"]

    @admin.display(description="duration", ordering="duration_seconds")
    def duration(self, obj: Call) -> str:
        if obj.duration_seconds is None:
            return "-"
        minutes, seconds = divmod(obj.duration_seconds, 60)
        return f"{minutes}:{seconds:02d}"

    @admin.display(description="transcript")
    def transcript(self, obj: Call) -> str:
        if obj.conversation_id is None:
            return "-"
        url = reverse("dashboard:agent_conversation_change", args=[obj.conversation_id])
        return format_html('<a href="{}">View transcript</a>', url)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
