"""The site's URLs plus one tenant page that reads the tenant's database."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from booking.models import BusinessProfile


def profile(request: HttpRequest, slug: str) -> JsonResponse:
    # TenantMiddleware has resolved the slug and entered the tenant context.
    name = BusinessProfile.objects.values_list("display_name", flat=True).first()
    return JsonResponse({"name": name})


urlpatterns = [
    path("b/<slug:slug>/bench/profile", profile),
    path("", include("smartscheduler.urls")),
]
