from django.apps import AppConfig


class AgentConfig(AppConfig):
    name = "agent"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from agent import receivers

        # Cached business facts follow every change to the rows they come from.
        receivers.connect()
