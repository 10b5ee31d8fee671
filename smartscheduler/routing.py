"""Websocket routes (TenantWebsocketMiddleware has resolved the business from the path)."""

from typing import Any

from django.urls import re_path

from agent.consumers import ChatConsumer

websocket_urlpatterns: list[Any] = [
    re_path(r"^ws/chat/(?P<slug>[^/]+)/?$", ChatConsumer.as_asgi()),
]
