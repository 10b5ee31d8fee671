"""The dashboard's plan page: plan, subscription status, this month's usage.

It lives in booking because usage is counted from appointments, and billing
must not import booking (dependencies point one way: billing <- booking).
Changing plans and managing payment happen on Stripe's own pages; only the
business's owner may open them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import stripe
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from billing.plans import PLANS
from billing.reconcile import billing_state
from billing.services import BillingError, checkout_confirm, checkout_start, portal_start
from billing.stripe_api import billing_enabled
from booking.selectors import appointments_count_this_month, profile_get
from tenants.dashboard import dashboard_membership, dashboard_site, request_tenant
from tenants.models import Membership, Tenant

logger = logging.getLogger(__name__)


def _tenant(request: HttpRequest, *, owner: bool = False) -> Tenant:
    membership = dashboard_membership(request)
    tenant = request_tenant(request)
    if membership is None or tenant is None:
        raise PermissionDenied
    if owner and membership.role != Membership.Role.OWNER:
        raise PermissionDenied
    request.current_app = dashboard_site.name
    return tenant


def _url(request: HttpRequest, name: str) -> str:
    return request.build_absolute_uri(reverse(f"{dashboard_site.name}:{name}"))


def plan_view(request: HttpRequest) -> HttpResponse:
    tenant = _tenant(request)
    state = billing_state(tenant)
    plan = PLANS[tenant.plan]
    used = appointments_count_this_month(profile=profile_get())
    membership = dashboard_membership(request)
    context = {
        **dashboard_site.each_context(request),
        "title": "Plan and billing",
        "plan": plan,
        "plans": list(PLANS.values()),
        "state": state,
        "used": used,
        "limit": plan.appointment_limit,
        "stripe_billing": billing_enabled(),
        "is_owner": membership is not None and membership.role == Membership.Role.OWNER,
    }
    return TemplateResponse(request, "billing/plan.html", context)


@require_POST
def checkout_view(request: HttpRequest) -> HttpResponse:
    tenant = _tenant(request, owner=True)
    plan = request.POST.get("plan", "")
    if plan not in PLANS:
        messages.error(request, "Please choose one of the plans.")
        return HttpResponseRedirect(reverse(f"{dashboard_site.name}:billing_plan"))
    return _to_stripe(
        request,
        lambda: checkout_start(
            tenant=tenant,
            plan=plan,
            success_url=_url(request, "billing_success") + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=_url(request, "billing_cancel"),
        ),
    )


@require_POST
def portal_view(request: HttpRequest) -> HttpResponse:
    tenant = _tenant(request, owner=True)
    return _to_stripe(
        request, lambda: portal_start(tenant=tenant, return_url=_url(request, "billing_plan"))
    )


def _to_stripe(request: HttpRequest, start: Callable[[], str]) -> HttpResponse:
    try:
        url = start()
    except BillingError as exc:
        messages.error(request, str(exc))
    except stripe.StripeError as exc:
        logger.warning("billing: Stripe refused or could not be reached (%s)", type(exc).__name__)
        messages.error(request, "We could not reach our payment provider. Please try again.")
    else:
        return HttpResponseRedirect(url)
    return HttpResponseRedirect(reverse(f"{dashboard_site.name}:billing_plan"))


def success_view(request: HttpRequest) -> HttpResponse:
    tenant = _tenant(request)
    try:
        checkout_confirm(tenant=tenant, session_id=request.GET.get("session_id", ""))
    except stripe.StripeError as exc:
        # The webhook brings the same news shortly.
        logger.warning("billing: checkout not confirmed on return (%s)", type(exc).__name__)
    messages.success(
        request,
        "Thank you! Your payment went through; your plan changes as soon as Stripe confirms it "
        "(usually within a minute).",
    )
    return HttpResponseRedirect(reverse(f"{dashboard_site.name}:billing_plan"))


def cancel_view(request: HttpRequest) -> HttpResponse:
    _tenant(request)
    messages.info(request, "Checkout cancelled: nothing was charged and your plan is unchanged.")
    return HttpResponseRedirect(reverse(f"{dashboard_site.name}:billing_plan"))


dashboard_site.register_view("billing/", plan_view, name="billing_plan", label="Plan and billing")
dashboard_site.register_view("billing/checkout/", checkout_view, name="billing_checkout")
dashboard_site.register_view("billing/portal/", portal_view, name="billing_portal")
dashboard_site.register_view("billing/success/", success_view, name="billing_success")
dashboard_site.register_view("billing/cancel/", cancel_view, name="billing_cancel")
