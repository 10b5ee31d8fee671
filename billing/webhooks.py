"""Stripe webhooks at ``/stripe/webhook/``, processed through dj-stripe.

dj-stripe only serves ``webhook/<uuid>/`` with the secret kept in a
``WebhookEndpoint`` row. Here the secret is ``STRIPE_WEBHOOK_SECRET``: the view
verifies the signature with stripe's own helper (never honouring dj-stripe's
DEBUG-only secret override header), then hands the request to dj-stripe through
an endpoint row kept in step with the settings. dj-stripe stores each event
once by id (a repeated delivery is a no-op), mirrors the objects it names, and
sends its per-type signals, on which the receivers below update the business's
plan and subscription status by re-reading the subscription from Stripe.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import stripe
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from djstripe.enums import WebhookEndpointStatus, WebhookEndpointValidation
from djstripe.models import Event, WebhookEndpoint, WebhookEventTrigger
from djstripe.signals import WEBHOOK_SIGNALS

from billing.services import customer_link, subscription_sync
from tenants.models import Tenant

logger = logging.getLogger(__name__)

# The local id of the endpoint row that carries STRIPE_WEBHOOK_SECRET.
SETTINGS_ENDPOINT_ID = "we_smartscheduler_settings"


def settings_endpoint() -> WebhookEndpoint:
    """The dj-stripe endpoint row for ``/stripe/webhook/``, in step with the settings."""
    endpoint, _ = WebhookEndpoint.objects.update_or_create(
        id=SETTINGS_ENDPOINT_ID,
        defaults={
            "url": f"{settings.PUBLIC_BASE_URL}/stripe/webhook/",
            "secret": settings.STRIPE_WEBHOOK_SECRET,
            "api_version": settings.STRIPE_API_VERSION,
            "enabled_events": ["*"],
            "status": WebhookEndpointStatus.enabled,
            "djstripe_validation_method": WebhookEndpointValidation.verify_signature,
            "livemode": settings.STRIPE_LIVE_MODE,
        },
    )
    return endpoint


def _signature_valid(request: HttpRequest) -> bool:
    secret = settings.STRIPE_WEBHOOK_SECRET
    header = request.headers.get("Stripe-Signature")
    if not secret or not header:
        return False
    try:
        stripe.WebhookSignature.verify_header(
            request.body.decode("utf-8"), header, secret, stripe.Webhook.DEFAULT_TOLERANCE
        )
    except (stripe.SignatureVerificationError, UnicodeDecodeError):
        return False
    return True


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    if not _signature_valid(request):
        logger.warning("billing: webhook with a missing or bad signature refused")
        return HttpResponseBadRequest("bad signature")
    try:
        payload = json.loads(request.body)
    except ValueError:
        return HttpResponseBadRequest("bad payload")
    if not isinstance(payload, dict) or not {"id", "type", "livemode"} <= payload.keys():
        return HttpResponseBadRequest("bad payload")
    try:
        trigger = WebhookEventTrigger.from_request(request, webhook_endpoint=settings_endpoint())
    except Exception:
        # dj-stripe rolled the event back and kept the trigger with the error;
        # a 500 makes Stripe deliver it again later.
        logger.exception("billing: webhook event %s could not be processed", payload["id"])
        return HttpResponse("processing failed", status=500)
    if not trigger.valid:
        return HttpResponseBadRequest("not valid")
    return HttpResponse("ok")


def _object(event: Event) -> dict[str, Any]:
    data = event.data or {}
    obj = data.get("object") or {}
    return obj if isinstance(obj, dict) else {}


def _id(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _sync(subscription_id: str, tenant_id: str | None) -> None:
    if not subscription_id:
        return
    try:
        subscription_sync(subscription_id=subscription_id, tenant_id=tenant_id)
    except stripe.InvalidRequestError as exc:
        if getattr(exc, "code", "") == "resource_missing":
            logger.warning("billing: event names a subscription Stripe no longer has")
            return
        raise


def on_checkout_completed(sender: Any, event: Event, **kwargs: Any) -> None:
    session = _object(event)
    if session.get("mode") != "subscription":
        return
    tenant_id = session.get("client_reference_id") or (session.get("metadata") or {}).get(
        "tenant_id"
    )
    customer_id = _id(session.get("customer"))
    if tenant_id and customer_id:
        tenant = Tenant.objects.filter(pk=tenant_id).first()
        if tenant is not None:
            customer_link(tenant=tenant, customer_id=customer_id)
    _sync(_id(session.get("subscription")), tenant_id)


def on_subscription_changed(sender: Any, event: Event, **kwargs: Any) -> None:
    subscription = _object(event)
    _sync(_id(subscription.get("id")), (subscription.get("metadata") or {}).get("tenant_id"))


def on_invoice_settled(sender: Any, event: Event, **kwargs: Any) -> None:
    invoice = _object(event)
    # Since API version 2025-03-31 the subscription is under ``parent``.
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    subscription_id = _id(invoice.get("subscription")) or _id(details.get("subscription"))
    _sync(subscription_id, (details.get("metadata") or {}).get("tenant_id"))


RECEIVERS = {
    "checkout.session.completed": on_checkout_completed,
    "customer.subscription.created": on_subscription_changed,
    "customer.subscription.updated": on_subscription_changed,
    "customer.subscription.deleted": on_subscription_changed,
    "customer.subscription.paused": on_subscription_changed,
    "customer.subscription.resumed": on_subscription_changed,
    "invoice.paid": on_invoice_settled,
    "invoice.payment_failed": on_invoice_settled,
}


def connect_receivers() -> None:
    for event_type, receiver in RECEIVERS.items():
        WEBHOOK_SIGNALS[event_type].connect(
            receiver, sender=Event, dispatch_uid=f"billing:{event_type}"
        )
