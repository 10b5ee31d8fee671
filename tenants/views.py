"""Owner accounts: signup, login by email, logout, password reset, business switcher."""

from __future__ import annotations

import logging
import uuid

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_http_methods, require_POST

from smartscheduler import ratelimits
from tenants.forms import EmailAuthenticationForm, SignupForm
from tenants.middleware import SESSION_TENANT_KEY
from tenants.models import Plan
from tenants.provisioning import ProvisioningError
from tenants.selectors import memberships_of
from tenants.services import tenant_create

logger = logging.getLogger(__name__)


@require_http_methods(["GET", "POST"])
@ratelimits.limit(
    "signup_ip", ratelimits.ip_key, method="POST",
    detail="Too many sign-ups from your network. Please try again later.",
)
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard:index")
    if request.method == "POST":
        form = SignupForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                tenant = tenant_create(
                    slug=data["slug"],
                    name=data["name"],
                    timezone=data["timezone"],
                    owner_email=data["email"],
                    owner_password=data["password"],
                    # A paid plan starts only once it is paid for (Stripe checkout)
                    # or set by platform staff (manual billing): never from a form.
                    plan=Plan.STARTER,
                )
            except ValidationError as exc:
                form.add_service_error(exc)
            except IntegrityError:
                # Someone took the address (or the email) between the form check and the insert.
                form.add_error(None, "That address or email was just taken; please try again.")
            except (ProvisioningError, OSError, DatabaseError):
                logger.exception("signup could not provision a business database")
                form.add_error(
                    None, "We could not set up your business just now. Please try again."
                )
            else:
                owner = User.objects.get(username=data["email"])
                login(request, owner)
                request.session[SESSION_TENANT_KEY] = str(tenant.pk)
                if data["plan"] != Plan.STARTER:
                    messages.info(
                        request,
                        f"Your business starts on Starter. Choose {Plan(data['plan']).label} "
                        "here to upgrade.",
                    )
                    return redirect("dashboard:billing_plan")
                return redirect("dashboard:index")
    else:
        plan = request.GET.get("plan")
        form = SignupForm(initial={"plan": plan} if plan in Plan.values else None)
    return render(request, "accounts/signup.html", {"form": form})


LOCKOUT_MESSAGE = (
    "Too many failed attempts to log in to this account, so logging in to it is paused "
    "for a while. You can also reset your password."
)
LOGIN_FAILURES = "login_failures_account"


@method_decorator(
    ratelimits.limit("login_ip", ratelimits.ip_key, method="POST",
                     detail="Too many login attempts from your network."),
    name="post",
)
class LoginView(auth_views.LoginView):
    """Login by email, with a lockout after too many failed attempts on one account.

    Each attempt is counted against the typed email before the password is
    checked (so parallel guesses cannot slip past the limit) and handed back
    when it succeeds: only failures use up the allowance. The lockout answer is
    the same whether or not the account exists.
    """

    authentication_form = EmailAuthenticationForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: str, **kwargs: str) -> HttpResponse:
        account = ratelimits.account_key(request.POST.get("username", ""))
        attempt = ratelimits.usage(request, LOGIN_FAILURES, account)
        if attempt.limited:
            return ratelimits.too_many_requests(
                request, retry_after=attempt.retry_after, detail=LOCKOUT_MESSAGE
            )
        response = super().post(request, *args, **kwargs)
        if request.user.is_authenticated:
            ratelimits.release(LOGIN_FAILURES, account)
        return response


def _reset_account_key(group: str, request: HttpRequest) -> str:
    return ratelimits.account_key(request.POST.get("email", ""))


@method_decorator(
    ratelimits.limit("password_reset_ip", ratelimits.ip_key, method="POST",
                     detail="Too many password resets from your network."),
    name="post",
)
@method_decorator(
    ratelimits.limit("password_reset_account", _reset_account_key, method="POST",
                     detail="Too many password resets for this email address."),
    name="post",
)
class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"
    success_url = reverse_lazy("password_reset_done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"


@require_POST
@login_required
def switch_tenant(request: HttpRequest) -> HttpResponse:
    """Pick which of the user's businesses the dashboard shows.

    Lives outside /dashboard/ so an owner can switch away from a business
    that is suspended (the dashboard itself only shows a notice then).
    """
    try:
        wanted = uuid.UUID(request.POST.get("tenant", ""))
    except ValueError:
        raise Http404("No such business.") from None
    membership = memberships_of(request.user).filter(tenant_id=wanted).first()
    if membership is None:
        raise Http404("No such business.")
    request.session[SESSION_TENANT_KEY] = str(membership.tenant_id)
    return redirect("dashboard:index")
