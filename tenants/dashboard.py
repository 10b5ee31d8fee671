"""The owners' back office (``/dashboard/``) and the platform staff console (``/admin/``).

The dashboard is a second Django admin site. TenantMiddleware has already picked
the tenant from the user's membership and made it the tenant in context, so a
model admin registered here reads and writes that business's own database and
nothing else. Owners are not superusers: their rights come from the membership,
not from Django's per-user permissions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.response import SimpleTemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache

from audit.models import AuditEntry
from audit.services import (
    actor_from_request,
    audit_record,
    form_changes,
    is_platform_staff,
    related_changes,
)
from tenants.context import tenant_atomic
from tenants.models import Membership, Tenant
from tenants.selectors import memberships_of

# What each role may do in the dashboard. Staff run the calendar; only an
# owner deletes things.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Membership.Role.OWNER: frozenset({"view", "add", "change", "delete"}),
    Membership.Role.STAFF: frozenset({"view", "add", "change"}),
}

_MEMBERSHIP_CACHE = "_dashboard_membership"
# The business a platform staff member's session last entered; its log says so once.
_SESSION_STAFF_ENTERED = "audit_staff_entered_tenant"
# Set on an object by the admin while saving it: the field changes its log entry lists.
_PENDING_CHANGES = "_audit_pending_changes"


def request_tenant(request: HttpRequest) -> Tenant | None:
    return getattr(request, "tenant", None)


def dashboard_membership(request: HttpRequest) -> Membership | None:
    """The user's membership of the request's tenant, looked up once per request."""
    if hasattr(request, _MEMBERSHIP_CACHE):
        cached: Membership | None = getattr(request, _MEMBERSHIP_CACHE)
        return cached
    tenant = request_tenant(request)
    membership = None
    if tenant is not None and request.user.is_authenticated and request.user.is_active:
        membership = (
            Membership.objects.filter(user=request.user, tenant=tenant)
            .select_related("tenant")
            .first()
        )
    setattr(request, _MEMBERSHIP_CACHE, membership)
    return membership


def dashboard_allows(request: HttpRequest, action: str) -> bool:
    membership = dashboard_membership(request)
    if membership is None or not membership.tenant.is_active:
        return False
    return action in ROLE_PERMISSIONS.get(membership.role, frozenset())


def dashboard_is_owner(request: HttpRequest) -> bool:
    membership = dashboard_membership(request)
    return (
        membership is not None
        and membership.tenant.is_active
        and membership.role == Membership.Role.OWNER
    )


def _record_staff_entry(request: HttpRequest, tenant: Tenant) -> None:
    """Log, once per session and business, that platform staff opened its data."""
    if not is_platform_staff(request.user):
        return
    if request.session.get(_SESSION_STAFF_ENTERED) == str(tenant.pk):
        return
    audit_record(
        action=AuditEntry.Action.STAFF_ENTERED,
        actor=actor_from_request(request),
        object_type="business",
        object_id=tenant.pk,
        label=tenant.name,
    )
    request.session[_SESSION_STAFF_ENTERED] = str(tenant.pk)


@dataclass(frozen=True)
class DashboardView:
    route: str
    view: Callable[..., HttpResponse]
    name: str
    # When set, the dashboard's home page links to the view under this label.
    label: str = ""
    # When set, only requests it accepts see the link and may open the view.
    allowed: Callable[[HttpRequest], bool] | None = None

    def permits(self, request: HttpRequest) -> bool:
        return self.allowed is None or self.allowed(request)

    def guarded_view(self) -> Callable[..., HttpResponse]:
        if self.allowed is None:
            return self.view
        allowed, view = self.allowed, self.view

        @wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not allowed(request):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return guarded


class DashboardSite(admin.AdminSite):
    site_title = "Smart Scheduler"
    site_header = "Smart Scheduler"
    index_title = "Your business"
    index_template = "dashboard/index.html"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
        self.extra_views: list[DashboardView] = []

    def register_view(
        self,
        route: str,
        view: Callable[..., HttpResponse],
        *,
        name: str,
        label: str = "",
        allowed: Callable[[HttpRequest], bool] | None = None,
    ) -> None:
        """Serve ``view`` at ``/dashboard/<route>`` behind the dashboard's membership check.

        Apps call this from their admin module, which admin autodiscovery imports
        before the URLs are built, so this module never imports them.
        """
        self.extra_views.append(
            DashboardView(route=route, view=view, name=name, label=label, allowed=allowed)
        )

    def get_urls(self) -> list[URLResolver | URLPattern]:
        extra: list[URLResolver | URLPattern] = [
            path(v.route, self.admin_view(v.guarded_view()), name=v.name)
            for v in self.extra_views
        ]
        return extra + super().get_urls()

    def admin_view(self, view: Any, cacheable: bool = False) -> Any:
        inner = super().admin_view(view, cacheable)

        @wraps(inner)
        def in_business_zone(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            tenant = request_tenant(request)
            if tenant is None:
                response: HttpResponse = inner(request, *args, **kwargs)
                return response
            if self.has_permission(request):
                _record_staff_entry(request, tenant)
            # Owners read and type their own wall-clock times; the response is
            # rendered here because templates convert datetimes when rendered.
            with timezone.override(tenant.timezone):
                response = inner(request, *args, **kwargs)
                if isinstance(response, SimpleTemplateResponse) and not response.is_rendered:
                    response.render()
            return response

        return in_business_zone

    def has_permission(self, request: HttpRequest) -> bool:
        return dashboard_membership(request) is not None

    @method_decorator(never_cache)
    def login(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # Owners sign in on the site's own login page, by email.
        if request.user.is_authenticated:
            if self.has_permission(request):
                return HttpResponseRedirect(reverse("dashboard:index"))
            # Signed in, but no business here: say so rather than loop through login.
            return render(request, "dashboard/no_business.html", status=403)
        next_url = request.GET.get("next") or reverse("dashboard:index")
        return redirect_to_login(next_url, settings.LOGIN_URL)

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        tenant = request_tenant(request)
        if tenant is not None and self.has_permission(request):
            context["site_header"] = tenant.name
            context["site_title"] = f"{tenant.name} · Smart Scheduler"
            context["site_url"] = f"/b/{tenant.slug}/"
            context["dashboard_tenant"] = tenant
            memberships = list(memberships_of(request.user))
            context["tenant_choices"] = (
                [m.tenant for m in memberships] if len(memberships) > 1 else []
            )
            context["dashboard_links"] = [
                (v.label, reverse(f"{self.name}:{v.name}"))
                for v in self.extra_views
                if v.label and v.permits(request)
            ]
        # The admin log is shared by every business (object ids repeat across
        # tenant databases), so the dashboard does not show it.
        context["log_entries"] = []
        return context

    def get_log_entries(self, request: HttpRequest) -> Any:
        from django.contrib.admin.models import LogEntry

        return LogEntry.objects.none()


class TenantModelAdmin(admin.ModelAdmin):
    """Base for every model admin registered on the dashboard.

    Rights come from the membership of the tenant in context (see
    ROLE_PERMISSIONS); querysets need no filtering because the router already
    points them at that tenant's database.

    Every addition, change and deletion goes into the business's audit log
    (``audit``), in the same tenant transaction as the change, instead of
    Django's admin log, which is shared by every business.
    """

    # Fields recorded as "changed" without their values (besides audit's own list).
    audit_personal_fields: frozenset[str] = frozenset()
    # When the object's name is personal data (a customer), the log names it by id.
    audit_label_is_personal = False

    def has_module_permission(self, request: HttpRequest) -> bool:
        return dashboard_allows(request, "view")

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return dashboard_allows(request, "view")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return dashboard_allows(request, "add")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return dashboard_allows(request, "change")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return dashboard_allows(request, "delete")

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # Admin log rows are keyed by content type and object id, which repeat
        # in every tenant database: another business's history would show up.
        raise Http404

    # --- audit log --------------------------------------------------------------------

    def audit_label(self, obj: Model) -> str:
        if self.audit_label_is_personal:
            return f"{self.opts.verbose_name} #{obj.pk}"
        return str(obj)

    def _audit(
        self, request: HttpRequest, action: str, obj: Model, changes: list[dict[str, Any]]
    ) -> None:
        audit_record(
            action=action,
            actor=actor_from_request(request),
            object_type=str(self.opts.verbose_name),
            object_id=obj.pk,
            label=self.audit_label(obj),
            changes=changes,
        )

    def construct_change_message(
        self, request: HttpRequest, form: Any, formsets: Any, add: bool = False
    ) -> list[dict[str, Any]]:
        message: list[dict[str, Any]] = super().construct_change_message(
            request, form, formsets, add
        )
        # The form still holds the values from before the save (``initial``):
        # the last moment both old and new values are at hand.
        changes = form_changes(form, personal=self.audit_personal_fields)
        instance = getattr(form, "instance", None)
        if instance is not None:
            setattr(instance, _PENDING_CHANGES, changes + related_changes(message))
        return message

    # The admin ignores what these return; Django's own return admin LogEntry rows.
    def log_addition(self, request: HttpRequest, obj: Model, message: Any) -> Any:
        self._audit(request, AuditEntry.Action.CREATE, obj, getattr(obj, _PENDING_CHANGES, []))

    def log_change(self, request: HttpRequest, obj: Model, message: Any) -> Any:
        self._audit(request, AuditEntry.Action.CHANGE, obj, getattr(obj, _PENDING_CHANGES, []))

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        # Recorded by delete_model/delete_queryset, inside the deleting transaction.
        return None

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        with tenant_atomic():
            self._audit(request, AuditEntry.Action.DELETE, obj, [])
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with tenant_atomic():
            for obj in queryset:
                self._audit(request, AuditEntry.Action.DELETE, obj, [])
            super().delete_queryset(request, queryset)


class PlatformAdminSite(admin.AdminSite):
    """``/admin/``: the platform staff console, for superusers only."""

    site_title = "Smart Scheduler platform"
    site_header = "Platform console"
    index_title = "Platform administration"

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and user.is_staff and user.is_superuser)

    @method_decorator(never_cache)
    def login(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # One login form for everybody: the site's own, with its rate limits and
        # account lockout. Admin's stock form would be an unthrottled side door.
        if request.user.is_authenticated and self.has_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        if request.user.is_authenticated:
            raise PermissionDenied
        next_url = request.GET.get("next") or reverse("admin:index")
        return redirect_to_login(next_url, settings.LOGIN_URL)


dashboard_site = DashboardSite(name="dashboard")
