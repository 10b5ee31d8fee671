from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Businesses"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tenants import checks, db, directory  # noqa: F401  (checks register themselves)
        from tenants.models import Tenant

        db.install()
        directory.refresh_on_change(Tenant, uid="tenants.directory.tenant")
