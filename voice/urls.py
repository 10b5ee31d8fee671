"""Twilio's webhooks. Exact paths (an optional trailing slash is served, never
redirected: a redirect would turn Twilio's POST into a GET and lose the call)."""

from django.urls import re_path

from voice import views

SLUG = r"(?P<slug>[a-z0-9][a-z0-9-]*[a-z0-9])"

urlpatterns = [
    # The business found by the called number (``To``).
    re_path(r"^voice/incoming/?$", views.incoming, name="voice_incoming_by_number"),
    re_path(r"^voice/status/?$", views.status, name="voice_status_by_number"),
    re_path(r"^voice/sms/?$", views.sms, name="voice_sms_by_number"),
    # The business named in the path.
    re_path(rf"^voice/{SLUG}/incoming/?$", views.incoming, name="voice_incoming"),
    re_path(rf"^voice/{SLUG}/turn/?$", views.turn, name="voice_turn"),
    re_path(rf"^voice/{SLUG}/status/?$", views.status, name="voice_status"),
    re_path(rf"^voice/{SLUG}/sms/?$", views.sms, name="voice_sms"),
]
