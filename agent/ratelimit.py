"""Fixed-window message counters for the chat websocket.

A websocket message has no HTTP request, but django-ratelimit's core counts
any key its caller names: these are its counters, in the same cache as every
other limit (Redis when REDIS_URL is set), switched off by the same
RATELIMIT_ENABLE. The caller's keys carry the tenant id, so two businesses
never share a counter.
"""

from __future__ import annotations

from smartscheduler import ratelimits

GROUP = "agent.chat"


def hit(key: str, *, limit: int, window_seconds: int = 60) -> bool:
    """Count one event for ``key``; False once more than ``limit`` fell in this window."""
    counted = ratelimits.usage(None, GROUP, key, rate=(limit, window_seconds))
    return not counted.limited
