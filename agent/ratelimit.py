"""Fixed-window message counters for the chat websocket.

django-ratelimit is built around HTTP requests: its key functions and
``is_ratelimited`` expect a request object, and its system check refuses the
local-memory cache that is our embedded default. A websocket message has no
request, so this small counter on django.core.cache does the same job: one
``add`` + ``incr`` per message (both atomic on Redis), keys carrying the
tenant id so two businesses never share a counter.
"""

from __future__ import annotations

import time

from django.core.cache import cache


def hit(key: str, *, limit: int, window_seconds: int = 60) -> bool:
    """Count one event for ``key``; False once more than ``limit`` fell in this window."""
    bucket = int(time.time()) // window_seconds
    full_key = f"agent:rl:{key}:{bucket}"
    # The key outlives its window a little, then the cache forgets it.
    cache.add(full_key, 0, timeout=window_seconds + 5)
    try:
        count = cache.incr(full_key)
    except ValueError:
        # Evicted between add and incr: this is the window's first hit again.
        cache.set(full_key, 1, timeout=window_seconds + 5)
        count = 1
    return count <= limit
