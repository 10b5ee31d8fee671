from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Businesses"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tenants import checks, db, receivers  # noqa: F401  (checks register themselves)

        db.install()
        receivers.connect()
