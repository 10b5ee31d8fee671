from audit.views import activity_view
from tenants.dashboard import dashboard_is_owner, dashboard_site

dashboard_site.register_view(
    "activity/", activity_view, name="audit_log", label="Activity", allowed=dashboard_is_owner
)
