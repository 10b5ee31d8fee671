"""Websocket routes; the chat consumer arrives with the agent."""

from typing import Any

websocket_urlpatterns: list[Any] = []
