"""Twilio webhook plumbing: signature checks and finding the business.

Every voice and SMS webhook is signed by Twilio (X-Twilio-Signature, HMAC of
the URL it requested plus the POST fields, keyed with TWILIO_AUTH_TOKEN). The
URL is rebuilt as PUBLIC_BASE_URL + the path and query: behind a load balancer
that terminates TLS, the request Django sees says http and an inner host, but
Twilio signed the public https address. Without a token nothing is accepted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseNotFound
from django.views.decorators.csrf import csrf_exempt
from twilio.request_validator import RequestValidator

from smartscheduler import ratelimits
from tenants.context import tenant_context
from tenants.models import Tenant

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "HTTP_X_TWILIO_SIGNATURE"

TwilioView = Callable[[HttpRequest, Tenant], HttpResponse]


def public_url(request: HttpRequest) -> str:
    """The address Twilio requested (and signed), as the public sees it."""
    return settings.PUBLIC_BASE_URL + request.get_full_path()


def signature_valid(request: HttpRequest) -> bool:
    token = settings.TWILIO_AUTH_TOKEN
    signature = request.META.get(SIGNATURE_HEADER, "")
    if not token or not signature:
        return False
    return bool(RequestValidator(token).validate(public_url(request), request.POST, signature))


def tenant_by_number(number: str) -> Tenant | None:
    if not number:
        return None
    return Tenant.objects.filter(phone_number=number).first()


def twilio_webhook(view: TwilioView) -> Callable[..., HttpResponse]:
    """A signed POST from Twilio, run with the business in context.

    ``/voice/<slug>/...``: TenantMiddleware found the business (and keeps it in
    context, even when suspended, so the view can say so in TwiML).
    ``/voice/incoming`` and friends: the business is the one owning the called
    number (``To``), looked up only after the signature is proven.
    """

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, slug: str | None = None) -> HttpResponse:
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        if not signature_valid(request):
            logger.warning("refused a voice webhook with a missing or wrong signature")
            return HttpResponseForbidden("Invalid Twilio signature.")
        tenant: Tenant | None = getattr(request, "tenant", None)
        if slug is not None:
            if tenant is None or tenant.slug != slug:
                return HttpResponseNotFound()
            return view(request, tenant)
        tenant = tenant_by_number(request.POST.get("To", ""))
        if tenant is None:
            return HttpResponseNotFound()
        request.tenant = tenant  # type: ignore[attr-defined]
        with tenant_context(tenant):
            return view(request, tenant)

    return wrapper


def per_caller(limit_name: str) -> Callable[[TwilioView], TwilioView]:
    """Limit a webhook per calling number (``From``) and business.

    Goes under ``twilio_webhook``, so it counts only requests whose signature
    was proven: an unsigned request is refused whatever number it claims.
    """

    def decorate(view: TwilioView) -> TwilioView:
        @wraps(view)
        def limited(request: HttpRequest, tenant: Tenant) -> HttpResponse:
            key = f"{tenant.pk.hex}:{request.POST.get('From', '')}"
            counted = ratelimits.usage(request, limit_name, key)
            if counted.limited:
                logger.warning("rate limited a %s webhook for business %s", limit_name, tenant.pk)
                return ratelimits.too_many_requests(request, retry_after=counted.retry_after)
            return view(request, tenant)

        return limited

    return decorate
