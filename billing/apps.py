from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from billing import receivers, stripe_api, webhooks

        stripe_api.configure()
        webhooks.connect_receivers()
        receivers.connect()
