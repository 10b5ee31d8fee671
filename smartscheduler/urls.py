from django.contrib import admin
from django.urls import include, path

from smartscheduler import views
from tenants.dashboard import dashboard_site

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("dashboard/", dashboard_site.urls),
    path("", include("tenants.urls")),
    path("", include("billing.urls")),
    path("", include("booking.urls")),
    path("", include("agent.urls")),
    path("", include("voice.urls")),
]

handler400 = "smartscheduler.views.bad_request"
handler403 = "smartscheduler.views.permission_denied"
handler404 = "smartscheduler.views.page_not_found"
handler500 = "smartscheduler.views.server_error"
