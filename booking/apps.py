from django.apps import AppConfig


class BookingConfig(AppConfig):
    name = "booking"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from booking import receivers, signals

        # Notifications and waitlist promotion follow every appointment change.
        signals.appointment_changed.connect(
            receivers.on_appointment_changed, dispatch_uid="booking.receivers.appointment_changed"
        )
