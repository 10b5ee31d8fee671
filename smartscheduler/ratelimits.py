"""Rate limits: django-ratelimit's counters, the client's address, and the 429 answer.

Limits are named in ``settings.RATELIMITS`` ("count/period"). The counters are
django-ratelimit's fixed windows in the default cache: Redis when REDIS_URL is
set, otherwise the memory of the one process that serves everything. Keys of
public endpoints carry the tenant id, so one business's visitors never use up
another's allowance. Refusals are 429 with Retry-After: a friendly page for
people, ``{"error": "rate_limited", "detail": ...}`` for API clients.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django_ratelimit import ALL
from django_ratelimit import core as ratelimit_core
from ninja.throttling import BaseThrottle
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

RATE_LIMITED = "rate_limited"
DEFAULT_DETAIL = "Too many requests. Please wait a moment and try again."

KeyFunction = Callable[[str, HttpRequest], str]
View = TypeVar("View", bound=Callable[..., HttpResponse])


# --- who is asking ------------------------------------------------------------------------


def client_ip(request: HttpRequest) -> str:
    """The client's address (django-ratelimit's RATELIMIT_IP_META_KEY).

    X-Forwarded-For is read only when RATELIMIT_TRUSTED_PROXIES says that many
    proxies append to it; the entry the outermost of them added is the client
    as it saw it. Entries further left are the client's own words and could
    name anyone, so they never count.
    """
    return _client_address(
        str(request.META.get("REMOTE_ADDR") or ""),
        request.META.get("HTTP_X_FORWARDED_FOR", ""),
    )


def scope_client_ip(scope: Mapping[str, Any]) -> str:
    """``client_ip`` for an ASGI connection (the chat websocket), by the same rules."""
    client = scope.get("client") or ("", 0)
    forwarded = b",".join(
        value for name, value in scope.get("headers", ()) if name.lower() == b"x-forwarded-for"
    )
    return _client_address(str(client[0] or ""), forwarded.decode("latin-1"))


def _client_address(remote: str, forwarded_for: str) -> str:
    proxies = max(0, int(settings.RATELIMIT_TRUSTED_PROXIES))
    if proxies == 0:
        return remote
    hops = [hop.strip() for hop in forwarded_for.split(",")]
    hops = [hop for hop in hops if hop]
    if len(hops) < proxies:
        # Fewer hops than proxies: the request did not come the way the setting says.
        return remote
    candidate = hops[-proxies]
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return remote
    return candidate


def _network(ip: str) -> str:
    # The same masking django-ratelimit applies to its "ip" key: one IPv6 /64 is one client.
    if not ip:
        return "unknown"
    mask = (getattr(settings, "RATELIMIT_IPV6_MASK", 64) if ":" in ip
            else getattr(settings, "RATELIMIT_IPV4_MASK", 32))
    try:
        return str(ipaddress.ip_network(f"{ip}/{mask}", strict=False).network_address)
    except ValueError:
        return ip


def ip_key(group: str, request: HttpRequest) -> str:
    return _network(client_ip(request))


def tenant_ip_key(group: str, request: HttpRequest) -> str:
    """The address, within the business the path names (set by TenantMiddleware)."""
    tenant = getattr(request, "tenant", None)
    address = _network(client_ip(request))
    return f"{tenant.pk.hex}:{address}" if tenant is not None else address


def account_key(typed: str) -> str:
    """An account as typed in a form: whether it exists never changes the key."""
    return typed.strip().lower()


# --- counting -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    limited: bool
    count: int
    limit: int
    retry_after: int  # whole seconds until the window ends


_NOT_LIMITED = Usage(limited=False, count=0, limit=0, retry_after=0)


def _rate(name: str) -> str:
    return str(settings.RATELIMITS[name])


def usage(request: HttpRequest | None, name: str, key: str, *, increment: bool = True,
          rate: str | tuple[int, int] | None = None) -> Usage:
    """Count one event of limit ``name`` for ``key`` (or only look, ``increment=False``).

    A cache that cannot be reached lets the request through: turning every
    visitor away because Redis is down would be worse than not counting.
    """
    try:
        found: dict[str, Any] | None = ratelimit_core.get_usage(
            request, group=name, key=lambda _group, _request: key,
            rate=rate or _rate(name), method=ALL, increment=increment,
        )
    except (RedisError, OSError):
        logger.warning("rate-limit cache unavailable; %s not counted", name)
        return _NOT_LIMITED
    if found is None:  # RATELIMIT_ENABLE is off
        return _NOT_LIMITED
    return Usage(
        limited=bool(found["should_limit"]),
        count=int(found["count"]),
        limit=int(found["limit"]),
        retry_after=max(1, int(found["time_left"])),
    )


def release(name: str, key: str) -> None:
    """Hand back one event counted by ``usage`` in the current window.

    django-ratelimit has no public call for this; the key is built by its own
    functions, so the counter is the very one ``usage`` incremented.
    """
    if not getattr(settings, "RATELIMIT_ENABLE", True):
        return
    rate = _rate(name)
    _, period = ratelimit_core._split_rate(rate)
    window = ratelimit_core._get_window(key, period)
    cache_key = ratelimit_core._make_cache_key(name, window, rate, key, ALL)
    cache = caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]
    try:
        cache.decr(cache_key)
    except ValueError:
        pass  # the window ended (and its counter with it) in between
    except (RedisError, OSError):
        logger.warning("rate-limit cache unavailable; %s not released", name)


# --- answering ----------------------------------------------------------------------------


def _wants_json(request: HttpRequest) -> bool:
    if request.path_info.startswith("/api/"):
        return True
    return request.get_preferred_type(["text/html", "application/json"]) == "application/json"


def wait_in_words(seconds: int) -> str:
    """'5 minutes', 'a minute': how long to wait, as a person would say it."""
    if seconds < 90:
        return "a minute" if seconds > 45 else "a few seconds"
    minutes = math.ceil(seconds / 60)
    if minutes < 90:
        return f"{minutes} minutes"
    return f"{math.ceil(minutes / 60)} hours"


def too_many_requests(request: HttpRequest, *, retry_after: int,
                      detail: str = DEFAULT_DETAIL) -> HttpResponse:
    """429 with Retry-After: JSON under /api/ (or when asked for), else a page."""
    response: HttpResponse
    if _wants_json(request):
        response = JsonResponse({"error": RATE_LIMITED, "detail": detail}, status=429)
    else:
        response = render(request, "429.html",
                          {"detail": detail, "wait": wait_in_words(retry_after)}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def limit(name: str, key: KeyFunction, *, method: str | None = None,
          detail: str = DEFAULT_DETAIL) -> Callable[[View], View]:
    """Decorate a view: past limit ``name`` for ``key``, answer 429 instead of running it.

    ``method`` counts only requests of that method (e.g. "POST": sending a form,
    not reading the page).
    """

    def decorate(view: View) -> View:
        @wraps(view)
        def limited(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if method is None or request.method == method:
                counted = usage(request, name, key(name, request))
                if counted.limited:
                    return too_many_requests(request, retry_after=counted.retry_after,
                                             detail=detail)
            return view(request, *args, **kwargs)

        return limited  # type: ignore[return-value]

    return decorate


class Throttle(BaseThrottle):
    """django-ninja's throttle hook over the same counters.

    Ninja answers a refusal by raising ``ninja.errors.Throttled`` with ``wait()``
    (the API's handler turns that into the JSON error) and sets Retry-After.
    """

    def __init__(self, name: str, key: KeyFunction = tenant_ip_key) -> None:
        self.name = name
        self.key = key
        # One instance serves every thread; wait() follows allow_request() in the same one.
        self._last = threading.local()

    def allow_request(self, request: HttpRequest) -> bool:
        counted = usage(request, self.name, self.key(self.name, request))
        self._last.retry_after = counted.retry_after
        return not counted.limited

    def wait(self) -> float | None:
        return float(getattr(self._last, "retry_after", 1))
