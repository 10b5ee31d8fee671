"""Conversations (read-only transcripts) and chat settings in the owners' dashboard."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from agent.engine import chat_settings_get
from agent.models import ChatSettings, Conversation, Message
from agent.widget import MAX_FRAME_DOMAINS, frame_sources_clean
from tenants.dashboard import TenantModelAdmin, dashboard_site

MESSAGE_FIELDS = ("created_at", "role", "text", "tool_name", "tool_args", "tool_result")
CONVERSATION_FIELDS = ("channel", "outcome", "customer_phone", "external_key", "created_at",
                       "updated_at")


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    can_delete = False
    fields = MESSAGE_FIELDS
    readonly_fields = MESSAGE_FIELDS
    ordering = ["created_at", "pk"]
    verbose_name = "message"
    verbose_name_plural = "transcript"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return dashboard_site.has_permission(request)


@admin.register(Conversation, site=dashboard_site)
class ConversationAdmin(TenantModelAdmin):
    """Transcripts are a record: nobody edits them (an owner may delete one)."""

    list_display = ["created_at", "channel", "outcome", "customer_phone", "message_count"]
    list_filter = ["channel", "outcome"]
    search_fields = ["customer_phone"]
    date_hierarchy = "created_at"
    fields = CONVERSATION_FIELDS
    readonly_fields = CONVERSATION_FIELDS
    inlines = [MessageInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        return super().get_queryset(request).annotate(message_total=Count("messages"))

    @admin.display(description="messages", ordering="message_total")
    def message_count(self, obj: Conversation) -> int:
        return int(getattr(obj, "message_total", 0))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ChatSettingsForm(forms.ModelForm):
    allowed_frame_domains = forms.CharField(
        label="Websites showing the chat",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "https://www.example.com"}),
        help_text=(
            f"One per line (at most {MAX_FRAME_DOMAINS}), e.g. https://www.example.com or "
            "*.example.com. Only these sites may show your chat widget."
        ),
    )

    class Meta:
        model = ChatSettings
        fields = ["greeting", "allowed_frame_domains"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance and isinstance(self.instance.allowed_frame_domains, list):
            self.initial["allowed_frame_domains"] = "\n".join(self.instance.allowed_frame_domains)

    def clean_allowed_frame_domains(self) -> list[str]:
        lines = str(self.cleaned_data.get("allowed_frame_domains") or "").splitlines()
        try:
            return frame_sources_clean(lines)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(ChatSettings, site=dashboard_site)
class ChatSettingsAdmin(TenantModelAdmin):
    form = ChatSettingsForm

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the one row is created on first use

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # One settings row per business: go straight to it.
        if not self.has_view_or_change_permission(request):
            return super().changelist_view(request, extra_context)
        settings_row = chat_settings_get()
        return HttpResponseRedirect(
            reverse("dashboard:agent_chatsettings_change", args=[settings_row.pk])
        )
