from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class SmartSchedulerConfig(AppConfig):
    name = "smartscheduler"
    verbose_name = "Smart Scheduler"


class PlatformAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the superuser-only console as the default site."""

    # Not this package's own config: only used where INSTALLED_APPS names it.
    default = False
    default_site = "tenants.dashboard.PlatformAdminSite"
