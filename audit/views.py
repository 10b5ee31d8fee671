"""The owner's Activity page in the dashboard: the business's audit log, read-only."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from audit.selectors import audit_entries
from tenants.dashboard import dashboard_site

ENTRIES_PER_PAGE = 50


def activity_view(request: HttpRequest) -> HttpResponse:
    # Owners only: the dashboard site checks that before calling the view.
    request.current_app = dashboard_site.name
    page = Paginator(audit_entries(), ENTRIES_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        **dashboard_site.each_context(request),
        "title": "Activity",
        "page_obj": page,
        "entries": page.object_list,
    }
    return TemplateResponse(request, "dashboard/audit_log.html", context)
