from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from billing import stripe_api, webhooks
        from billing.models import BillingAccount
        from tenants.directory import refresh_on_change

        stripe_api.configure()
        webhooks.connect_receivers()
        # billing.reconcile keeps accounts per process (tenants.directory).
        refresh_on_change(BillingAccount, uid="billing.directory.account")
