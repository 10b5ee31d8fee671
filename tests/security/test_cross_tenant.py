"""Cross-tenant probes: an outsider business tries to reach the victim business's data.

Nothing is hand-listed where it can be enumerated: the dashboard's URLs come
from ``dashboard_site.get_urls()``, the public ones from the root resolver, the
ids from the victim's database, and the modules that use the cache or the
channel layer from the source. Each probe checks that the outsider's response
holds none of the victim's names, numbers, references or texts
(``World.secrets``), that nothing answers with a server error, and that the
victim's database is unchanged afterwards. Canaries run the same probes as the
victim and must find those secrets, so a probe that reaches nothing fails.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import unquote_plus, urlencode

import pytest
import time_machine
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.core import mail, signing
from django.core.cache import cache
from django.core.cache.backends.base import BaseCache
from django.db.models import Model
from django.forms.models import model_to_dict
from django.http import HttpResponseBase
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern
from django_ratelimit import core as ratelimit_core
from twilio.request_validator import RequestValidator

from agent.models import Conversation
from billing import stripe_api
from billing.models import BillingAccount
from billing.reconcile import account_refresh
from booking import sms
from booking.models import Appointment, WaitlistEntry
from booking.tokens import appointment_from_manage_token
from booking.waitlist import offer_from_token
from smartscheduler.asgi import application
from tenants.context import current_tenant_or_none, tenant_context
from tenants.dashboard import dashboard_site
from tenants.directory import GENERATION_KEY
from tenants.middleware import SESSION_TENANT_KEY
from tenants.models import Membership, Tenant
from tests.booking.conftest import NOW, local
from tests.booking.test_notifications import run_worker
from tests.conftest import MakeTenant
from tests.fakes.stripe_server import PRICES, FakeStripe
from tests.security.tenant_world import (
    OUTSIDER_NUMBER,
    VICTIM_CALL_SID,
    VICTIM_CUSTOMERS,
    VICTIM_GREETING,
    Business,
    World,
    built_world,
    database_rows,
    owner_of,
)

REPO = Path(__file__).resolve().parents[2]
SERVER_ERROR = 500
TWILIO_TOKEN = "cross-tenant-twilio-token"
TWILIO_BASE = "https://voice.example.com"
WS_TIMEOUT = 10


@pytest.fixture
def world(make_tenant: MakeTenant) -> Iterator[World]:
    with built_world(make_tenant) as built:
        yield built


@pytest.fixture
def outsider_client(world: World) -> Client:
    """Signed in as the outsider's owner, with the CSRF check on (Probe sends the token)."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.outsider.owner)
    return client


# --- checking one response ---------------------------------------------------------------


def body_of(response: HttpResponseBase) -> str:
    if getattr(response, "streaming", False):
        raw = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    else:
        raw = response.content  # type: ignore[attr-defined]
    headers = " ".join(f"{k}: {v}" for k, v in response.items())
    return f"{headers}\n{raw.decode('utf-8', 'replace')}"


def leaked(text: str, secrets: list[str], *, asked: str = "") -> list[str]:
    """The secrets in ``text``, leaving out those the request itself carried."""
    text, asked = text.lower(), asked.lower()
    return [s for s in secrets if s.lower() not in asked and s.lower() in text]


def excerpts(text: str, secrets: list[str]) -> list[str]:
    """Where each secret shows up, for the failure message."""
    lowered = text.lower()
    found = []
    for secret in secrets:
        at = lowered.find(secret.lower())
        found.append(text[max(0, at - 120):at + 80])
    return found


@dataclass
class Probe:
    """Sends requests as one client and checks every answer against the secrets."""

    client: Client
    secrets: list[str]
    sent: int = 0
    statuses: list[int] = field(default_factory=list)

    def csrf_token(self) -> str:
        """The client's own CSRF token, as its browser would send it back."""
        # A page with a form sets the cookie: the sign-in page, or (signed in) a dashboard form.
        for page in ("/login/", "/dashboard/password_change/"):
            if settings.CSRF_COOKIE_NAME not in self.client.cookies:
                self.client.get(page)
        return str(self.client.cookies[settings.CSRF_COOKIE_NAME].value)

    def __call__(self, method: str, url: str, data: Any = None, **extra: Any) -> HttpResponseBase:
        self.sent += 1
        if method == "GET":
            response = self.client.get(url, **extra)
        else:
            if self.client.handler.enforce_csrf_checks:
                extra.setdefault("HTTP_X_CSRFTOKEN", self.csrf_token())
            response = self.client.post(url, data if data is not None else {}, **extra)
        self.statuses.append(response.status_code)
        asked = f"{unquote_plus(url)} {json.dumps(data, default=str) if data is not None else ''}"
        assert response.status_code < SERVER_ERROR, (method, url, response.status_code)
        body = body_of(response)
        found = leaked(body, self.secrets, asked=asked)
        assert not found, (method, url, response.status_code, found, excerpts(body, found))
        return response


# --- enumerating URLs ----------------------------------------------------------------------


def patterns_of(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    """(full route, pattern) for every leaf pattern under ``patterns``."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from patterns_of(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def parameters_of(route: str, pattern: URLPattern) -> list[str]:
    if isinstance(pattern.pattern, RoutePattern):
        return re.findall(r"<(?:\w+:)?(\w+)>", route)
    assert isinstance(pattern.pattern, RegexPattern)
    return list(re.compile(route).groupindex)


def fill(route: str, values: dict[str, str]) -> str:
    """A concrete path for ``route`` (a path() route or a simple regex) with ``values``."""
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m[1]], route)
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: values[m[1]], path)
    path = path.removeprefix("^").removesuffix("$").replace("/?", "/")
    return "/" + path


@dataclass(frozen=True)
class DashboardUrl:
    route: str
    name: str | None
    model: type[Model] | None
    params: tuple[str, ...]


def dashboard_urls() -> list[DashboardUrl]:
    """Every URL pattern of the dashboard, with the model it belongs to (if any)."""
    prefixes = {
        f"{model._meta.app_label}/{model._meta.model_name}/": model
        for model in dashboard_site._registry
    }
    found = []
    for route, pattern in patterns_of(dashboard_site.get_urls()):
        model = next((m for p, m in prefixes.items() if route.startswith(p)), None)
        found.append(DashboardUrl(route=route, name=pattern.name, model=model,
                                  params=tuple(parameters_of(route, pattern))))
    return found


# Views that change the signed-in user's own session or account, not business data.
ACCOUNT_VIEWS = {"logout", "password_change", "password_change_done", "login"}


def dashboard_paths(url: DashboardUrl, ids: dict[type[Model], list[Any]],
                    app_labels: list[str]) -> list[str]:
    """Concrete paths for one dashboard URL, filled with the given ids."""
    base = "/dashboard/"
    if not url.params:
        return [base + url.route]
    if url.params == ("object_id",):
        assert url.model is not None, url
        return [base + fill(url.route, {"object_id": str(pk)})[1:] for pk in ids[url.model]]
    if url.params == ("content_type_id", "object_id"):
        return [
            base + fill(url.route, {"content_type_id": str(ContentType.objects.get_for_model(m).pk),
                                    "object_id": str(pk)})[1:]
            for m, pks in ids.items() for pk in pks[-2:]
        ]
    if url.params == ("app_label",):
        return [base + fill(url.route, {"app_label": label})[1:] for label in app_labels]
    if url.params == ("url",):
        # The admin's catch-all: paths without their slash, and unknown ones.
        return [base + f"{m._meta.app_label}/{m._meta.model_name}/{pks[-1]}"
                for m, pks in ids.items() if pks] + [base + "nothing/here"]
    raise AssertionError(f"the probe cannot fill {url.params} in {url.route}: teach it")


def dashboard_queries(url: DashboardUrl, world: World) -> list[str]:
    """Query strings naming the victim's rows, for the pages that read them."""
    victim = world.victim
    staff = max(victim.staff.values())
    service = max(victim.services.values())
    customer_name, customer_phone, _ = VICTIM_CUSTOMERS[0]
    queries = [""]
    if url.name == "calendar":
        queries += [urlencode({"date": "2026-03-10", "view": "week", "staff": staff,
                               "cancelled": "1"}),
                    urlencode({"date": "2026-03-11", "staff": staff})]
    if url.name and url.name.endswith("_changelist"):
        queries += [urlencode({"q": victim.appointments[0].reference}),
                    urlencode({"q": customer_phone}),
                    urlencode({"staff__id__exact": staff, "service__id__exact": service}),
                    urlencode({"_popup": "1", "_to_field": "id"})]
    if url.name and url.name.endswith("_add"):
        queries += [urlencode({"service": service, "staff": staff, "date": "2026-03-10",
                               "time": "09:00"})]
    if url.name == "autocomplete":
        queries += [urlencode({"app_label": app, "model_name": model_name,
                               "field_name": field, "term": customer_name.split()[0]})
                    for app, model_name, field in [
                        ("booking", "appointment", "customer"),
                        ("booking", "appointment", "service"),
                        ("booking", "closure", "staff"),
                        ("voice", "call", "conversation"),
                    ]]
    return queries


def change_data(model_admin: admin.ModelAdmin, obj: Model) -> dict[str, Any]:
    """A change form's POST for ``obj`` with new text (inlines left alone).

    The text is the outsider's own: with a colliding id the edit lands on the
    outsider's row, which must not then look like the victim's.
    """
    data: dict[str, Any] = {}
    for key, value in model_to_dict(obj).items():
        if value is None:
            continue
        if isinstance(value, list):
            data[key] = [getattr(v, "pk", v) for v in value]
        elif isinstance(value, str):
            data[key] = "edit@oakridge.example" if "email" in key else "Oakridge edit"
        else:
            data[key] = getattr(value, "pk", value)
    for inline in model_admin.inlines:
        fk = next(f for f in inline.model._meta.fields
                  if f.is_relation and f.related_model is type(obj))
        prefix = fk.remote_field.get_accessor_name(model=inline.model).replace("+", "")
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0",
                     f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"})
    data["_save"] = "Save"
    return data


def victim_change_forms(world: World) -> dict[type[Model], dict[Any, dict[str, Any]]]:
    """For each registered model and victim row, the change form's POST."""
    with tenant_context(world.victim.tenant):
        return {model: {o.pk: change_data(model_admin, o) for o in model._base_manager.all()}
                for model, model_admin in dashboard_site._registry.items()}


def dashboard_posts(url: DashboardUrl, world: World, ids: dict[type[Model], list[Any]],
                    forms: dict[type[Model], dict[Any, dict[str, Any]]]
                    ) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, data) for every form the dashboard accepts, aimed at the victim's rows."""
    victim = world.victim
    if url.name in ACCOUNT_VIEWS or url.params not in {(), ("object_id",)}:
        return
    if url.params == ("object_id",):
        assert url.model is not None
        if url.name is None:
            return  # the bare object URL only redirects to its change page
        for pk in ids[url.model]:
            path = "/dashboard/" + fill(url.route, {"object_id": str(pk)})[1:]
            if url.name.endswith("_delete"):
                yield path, {"post": "yes"}
            elif url.name.endswith("_outcome"):
                for outcome in ("cancel", "no_show", "complete"):
                    yield path, {"outcome": outcome}
            elif url.name.endswith("_reschedule"):
                yield path, {"date": "2026-03-11", "time": "10:00", "staff": ""}
            elif url.name.endswith("_change"):
                yield path, forms[url.model][pk]
            else:
                yield path, {"post": "yes"}
        return
    path = "/dashboard/" + url.route
    if url.model is not None and url.name and url.name.endswith("_changelist"):
        model_admin = dashboard_site._registry[url.model]
        chosen = [str(pk) for pk in ids[url.model]]
        for action in [*(model_admin.actions or []), "delete_selected"]:
            yield path, {"action": action, "_selected_action": chosen, "index": "0",
                         "select_across": "0", "post": "yes"}
        if model_admin.list_editable:
            editable = {"form-TOTAL_FORMS": str(len(chosen)),
                        "form-INITIAL_FORMS": str(len(chosen)), "form-MIN_NUM_FORMS": "0",
                        "form-MAX_NUM_FORMS": "1000", "_save": "Save"}
            for n, pk in enumerate(chosen):
                editable[f"form-{n}-id"] = pk
                editable.update({f"form-{n}-{f}": "7" for f in model_admin.list_editable})
            yield path, editable
    elif url.name and url.name.endswith("_add") and url.model is not None:
        yield path, {
            "service": max(victim.services.values()), "staff": max(victim.staff.values()),
            "date": "2026-03-10", "time": "15:00", "name": "Outsider Booking",
            "phone": "+12125550188", "key": "f" * 32, "customer": "2", "reason": "x",
            "start_0": "2026-03-10", "start_1": "09:00", "end_0": "2026-03-10", "end_1": "10:00",
        }
    elif url.name == "calendar_feeds":
        for target in ["business", *(str(pk) for pk in victim.staff.values())]:
            for action in ("regenerate", "disable"):
                yield path, {"target": target, "action": action}
    else:
        # Any other page: a form naming the victim, in the fields a switcher might read.
        yield path, {"plan": "premium", "tenant": str(victim.tenant.pk), "slug": victim.slug,
                     "staff": str(max(victim.staff.values()))}


# --- the dashboard -------------------------------------------------------------------------


def test_the_probe_knows_every_dashboard_url(world: World) -> None:
    """Every dashboard pattern can be filled; models with rows on both sides get both cases."""
    victim_ids, outsider_ids = world.victim.ids(), world.outsider.ids()
    labels = sorted({m._meta.app_label for m in dashboard_site._registry})
    for url in dashboard_urls():
        assert dashboard_paths(url, victim_ids, labels), url
    for model in dashboard_site._registry:
        if model._meta.model_name in {"businessprofile", "chatsettings"}:
            continue  # one row per business: the same id on both sides
        only_victim = set(victim_ids[model]) - set(outsider_ids[model])
        both = set(victim_ids[model]) & set(outsider_ids[model])
        assert only_victim, f"{model._meta.label}: give the victim more rows than the outsider"
        assert both, f"{model._meta.label}: give the outsider a row with a colliding id"


def test_outsider_reads_nothing_of_the_victim_at_any_dashboard_url(
    world: World, outsider_client: Client
) -> None:
    probe = Probe(outsider_client, world.secrets)
    victim_ids = world.victim.ids()
    labels = sorted({m._meta.app_label for m in dashboard_site._registry})
    before = world.victim_rows()
    for url in dashboard_urls():
        for path in dashboard_paths(url, victim_ids, labels):
            for query in dashboard_queries(url, world):
                probe("GET", f"{path}?{query}" if query else path)
    assert probe.sent > 200
    assert world.victim_rows() == before


def test_outsider_changes_nothing_of_the_victim_with_any_dashboard_form(
    world: World, outsider_client: Client
) -> None:
    probe = Probe(outsider_client, world.secrets)
    victim_ids = world.victim.ids()
    forms = victim_change_forms(world)
    before = world.victim_rows()
    for url in dashboard_urls():
        for path, data in dashboard_posts(url, world, victim_ids, forms):
            probe("POST", path, data)
    assert probe.sent > 100
    # The forms were accepted where an id is the outsider's own too: the probes were real.
    assert probe.statuses.count(302) > 10, probe.statuses
    assert world.victim_rows() == before


def test_an_id_in_both_databases_shows_the_outsider_its_own_row(
    world: World, outsider_client: Client
) -> None:
    probe = Probe(outsider_client, world.secrets)
    staff = world.outsider.staff["Olga Orr"]
    assert staff in world.victim.staff.values()
    html = body_of(probe("GET", f"/dashboard/booking/staffmember/{staff}/change/"))
    assert "Olga Orr" in html
    appointment = world.outsider.appointments[0]
    assert appointment.pk == world.victim.appointments[0].pk
    html = body_of(probe("GET", f"/dashboard/booking/appointment/{appointment.pk}/change/"))
    assert appointment.reference in html and "Oscar Odd" in html


def test_canary_the_victim_sees_its_own_secrets_at_the_same_urls(world: World) -> None:
    """The same enumeration as the victim's owner finds the victim's data: the probes reach it."""
    client = Client()
    client.force_login(world.victim.owner)
    victim_ids = world.victim.ids()
    seen = []
    for url in dashboard_urls():
        if url.params == ("object_id",) and url.name and url.name.endswith("_change"):
            for path in dashboard_paths(url, victim_ids, []):
                response = client.get(path, follow=True)
                assert response.status_code == 200, path
                seen.append(body_of(response))
        elif not url.params and url.name not in ACCOUNT_VIEWS:
            seen.append(body_of(client.get(f"/dashboard/{url.route}", follow=True)))
    seen.append(body_of(client.get("/dashboard/calendar/?date=2026-03-10&view=week")))
    missing = [s for s in world.secrets if not leaked("\n".join(seen), [s])]
    # Only what the dashboard never shows may be missing: ids, the owner's login,
    # national phone formats (it shows E.164).
    assert set(missing) <= {str(world.victim.tenant.pk), world.victim.tenant.pk.hex,
                            world.victim.owner.email, "555-987", "555-9800"}, missing


def test_a_signed_in_user_without_a_business_reaches_no_dashboard_data(world: World) -> None:
    loner = User.objects.create_user("loner@example.com", "loner@example.com", "x" * 12)
    client = Client()
    client.force_login(loner)
    outsider_secrets = [*OUTSIDER_SECRETS, world.outsider.appointments[0].reference]
    probe = Probe(client, world.secrets + outsider_secrets)
    victim_ids = world.victim.ids()
    labels = sorted({m._meta.app_label for m in dashboard_site._registry})
    for url in dashboard_urls():
        if url.name in ACCOUNT_VIEWS:
            continue
        for path in dashboard_paths(url, victim_ids, labels):
            response = probe("GET", path)
            assert response.status_code in {302, 403, 404}, (path, response.status_code)
    anonymous = Probe(Client(), world.secrets + outsider_secrets)
    for url in dashboard_urls():
        if url.name in ACCOUNT_VIEWS:
            continue
        for path in dashboard_paths(url, victim_ids, labels)[:1]:
            assert anonymous("GET", path).status_code in {302, 404}, path


def test_session_query_and_headers_cannot_switch_the_outsider_to_the_victim(
    world: World, outsider_client: Client
) -> None:
    victim = world.victim.tenant
    probe = Probe(outsider_client, world.secrets)
    # A session naming a business the user is no member of is ignored.
    session = outsider_client.session
    session[SESSION_TENANT_KEY] = str(victim.pk)
    session.save()
    tries = {"tenant": str(victim.pk), "tenant_id": victim.pk.hex, "business": victim.slug,
             "slug": victim.slug, SESSION_TENANT_KEY: str(victim.pk)}
    headers = {"HTTP_X_TENANT": str(victim.pk), "HTTP_X_TENANT_ID": str(victim.pk),
               "HTTP_X_BUSINESS": victim.slug, "HTTP_X_TENANT_SLUG": victim.slug}
    for url in dashboard_urls():
        if url.params or url.name in ACCOUNT_VIEWS:
            continue
        response = probe("GET", f"/dashboard/{url.route}?{urlencode(tries)}", **headers)
        if response.status_code == 200 and url.name == "index":
            assert "Oakridge" in body_of(response)
    # The switcher refuses a business the user is no member of, and nothing changes.
    response = probe("POST", "/account/switch-business/", {"tenant": str(victim.pk)})
    assert response.status_code == 404
    response = probe("POST", "/account/switch-business/", {"tenant": victim.slug})
    assert response.status_code == 404
    assert "Oakridge" in body_of(probe("GET", "/dashboard/"))
    # A forged membership row elsewhere is what it would take: none was made.
    assert not Membership.objects.filter(user=world.outsider.owner, tenant=victim).exists()


@pytest.mark.parametrize("is_staff", [False, True])
def test_the_platform_console_shows_an_owner_nothing(world: World, outsider_client: Client,
                                                     is_staff: bool) -> None:
    """Closed to owners, and to staff who are not superusers."""
    User.objects.filter(pk=world.outsider.owner.pk).update(is_staff=is_staff)
    probe = Probe(outsider_client, world.secrets)
    account = BillingAccount.objects.filter(tenant=world.victim.tenant).first()
    fills = {
        "object_id": [str(world.victim.tenant.pk), str(world.victim.owner.pk),
                      str(Membership.objects.get(tenant=world.victim.tenant).pk),
                      str(account.pk) if account else "1"],
        "content_type_id": [str(ContentType.objects.get_for_model(Tenant).pk)],
        "app_label": ["tenants", "billing", "auth"],
        "url": ["tenants/tenant"],
        "action_name": ["sync"], "model_name": ["tenant"],
        "id": [str(world.victim.tenant.pk), str(world.victim.owner.pk)],
        "token": ["stats-token"],
    }
    for route, pattern in patterns_of(admin.site.get_urls()):
        params = parameters_of(route, pattern)
        # The console is closed to owners whatever the path: other parameters get a 1.
        paths = {"/admin/" + fill(route, {p: fills.get(p, ["1"])[n % len(fills.get(p, ["1"]))]
                                          for p in params})[1:]
                 for n in range(4)}
        for path in paths:
            response = probe("GET", path)
            if pattern.name in {"login", "logout"}:
                continue  # the console's own sign-in page, and sign-out (POST only)
            assert response.status_code in {302, 404}, (path, response.status_code)
            if response.status_code == 302:
                assert response["Location"].startswith("/admin/login/"), path


@contextmanager
def stripe_billing() -> Iterator[FakeStripe]:
    """Stripe billing switched on, against the fake Stripe on loopback."""
    with FakeStripe() as fake, override_settings(
        STRIPE_SECRET_KEY="sk_test_FakeKey0123456789abcdefghij",
        STRIPE_PUBLISHABLE_KEY="pk_test_fake", STRIPE_WEBHOOK_SECRET="whsec_cross_tenant",
        STRIPE_API_BASE=fake.api_base, STRIPE_PRICE_STARTER=PRICES["starter"][0],
        STRIPE_PRICE_STANDARD=PRICES["standard"][0], STRIPE_PRICE_PREMIUM=PRICES["premium"][0],
        BILLING_STRIPE_TIMEOUT_SECONDS=5.0,
    ):
        stripe_api.configure()
        try:
            yield fake
        finally:
            cache.clear()
    stripe_api.configure()


def test_a_victim_checkout_session_upgrades_only_the_victim(make_tenant: MakeTenant) -> None:
    victim = make_tenant("vexley-billing", name="Vexley Billing", plan="starter")
    outsider = make_tenant("oakridge-billing", name="Oakridge Billing", plan="starter")
    victim_owner, outsider_owner = Client(), Client()
    victim_owner.force_login(owner_of(victim))
    outsider_owner.force_login(owner_of(outsider))
    with stripe_billing() as fake:
        location = victim_owner.post("/dashboard/billing/checkout/", {"plan": "premium"})
        session_id = location["Location"].rsplit("/", 1)[-1]
        victim_customer = fake.get(session_id)["customer"]
        fake.complete_checkout(session_id)  # paid; its webhooks are not delivered
        # The outsider returns from "its" checkout with the victim's session id.
        response = outsider_owner.get(f"/dashboard/billing/success/?session_id={session_id}")
        assert response.status_code == 302
        outsider.refresh_from_db()
        assert outsider.plan == "starter"
        account = BillingAccount.objects.filter(tenant=outsider).first()
        assert account is None or account.stripe_customer_id != victim_customer
        # Manage billing opens the outsider's own Stripe customer, never the victim's.
        portal = outsider_owner.post("/dashboard/billing/portal/", {"tenant": str(victim.pk)})
        assert fake.get(portal["Location"].rsplit("/", 1)[-1])["customer"] != victim_customer
        plan_page = body_of(outsider_owner.get("/dashboard/billing/"))
        assert not leaked(plan_page, ["Vexley", victim_customer, session_id])
        # Canary: the victim's own return applies the same session.
        victim_owner.get(f"/dashboard/billing/success/?session_id={session_id}")
        victim.refresh_from_db()
        assert victim.plan == "premium"


# --- public URLs ---------------------------------------------------------------------------


def public_routes() -> list[tuple[str, URLPattern, list[str]]]:
    """Every URL outside /dashboard/ and /admin/, with its parameters."""
    routes = []
    for pattern in get_resolver().url_patterns:
        if isinstance(pattern, URLResolver) and str(pattern.pattern) in {"admin/", "dashboard/"}:
            continue
        for route, leaf in patterns_of([pattern]):
            routes.append((route, leaf, parameters_of(route, leaf)))
    return routes


def victim_tokens(victim: Business) -> list[str]:
    return victim.manage_tokens + victim.feed_tokens + victim.offer_tokens


def public_values(world: World, slug: str) -> Iterator[dict[str, str]]:
    """Parameter sets: every victim token and reference, under ``slug``."""
    victim = world.victim
    references = [a.reference for a in victim.appointments]
    for n, token in enumerate(victim_tokens(victim)):
        yield {"slug": slug, "token": token, "reference": references[n % len(references)],
               "uidb64": "MQ", "url": "x"}


def public_query(world: World) -> dict[str, str]:
    victim = world.victim
    return {
        "service": str(max(victim.services.values())), "staff": str(max(victim.staff.values())),
        "t": victim.manage_tokens[0], "start": "2026-03-10T09:00:00-04:00",
        "end": "2026-03-12", "date": "2026-03-10", "from": "2026-03-09",
        "conversation": victim.conversations[0].public_id,
        "tenant": str(victim.tenant.pk), "business": victim.slug,
    }


def public_form(world: World) -> dict[str, str]:
    victim = world.victim
    # A customer without "vexley" in any field, so that word stays a checked secret.
    name, phone, email = VICTIM_CUSTOMERS[2]
    return {
        "service": str(max(victim.services.values())), "staff": str(max(victim.staff.values())),
        "start": "2026-03-10T09:00:00-04:00", "date": "2026-03-11", "time": "10:00",
        "name": name, "phone": phone, "email": email, "key": "e" * 32,
        "days": "1", "part_of_day": "morning", "outcome": "cancel",
    }


def twilio_post(client: Client, path: str, data: dict[str, str]) -> Any:
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(TWILIO_BASE + path, data)
    return client.post(path, data, HTTP_X_TWILIO_SIGNATURE=signature)


def voice_form(speech: str) -> dict[str, str]:
    _name, phone, _email = VICTIM_CUSTOMERS[0]
    return {
        "CallSid": VICTIM_CALL_SID, "From": phone, "To": OUTSIDER_NUMBER,
        "SpeechResult": speech, "Body": speech, "CallStatus": "completed",
        "CallDuration": "42", "TranscriptionText": "overwritten by an outsider",
        "RecordingUrl": "https://example.com/outsider-recording",
    }


VOICE_SETTINGS = {"TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "PUBLIC_BASE_URL": TWILIO_BASE,
                  "SMS_BACKEND": "booking.sms.LocmemBackend", "AGENT_PROVIDER": "offline"}
# Hundreds of probes come from one address in one frozen minute: limits would
# answer 429 long before the probes are done (the key test keeps them on).
NO_LIMITS = {"RATELIMIT_ENABLE": False}


def test_victim_tokens_and_ids_open_nothing_at_the_outsider_s_public_urls(world: World) -> None:
    probe = Probe(Client(), world.secrets)
    before = world.victim_rows()
    query = urlencode(public_query(world))
    api_body = json.dumps({"service": max(world.victim.services.values()),
                           "staff": max(world.victim.staff.values()),
                           "start": "2026-03-10T09:00:00-04:00", "name": "Outsider Test",
                           "phone": "+12125550177"})
    probed = set()
    with override_settings(**VOICE_SETTINGS, **NO_LIMITS):
        for route, _pattern, params in public_routes():
            if route.startswith(("^voice", "voice")):
                continue  # signed by Twilio: below
            for values in public_values(world, world.outsider.slug):
                path = fill(route, {p: values[p] for p in params} if params else {})
                if path in probed:
                    continue
                probed.add(path)
                get = probe("GET", f"{path}?{query}")
                bound = "slug" in params and ("token" in params or "reference" in params)
                if bound:
                    assert get.status_code == 404, (path, get.status_code)
                if path.startswith("/api/") and path.endswith("/appointments"):
                    post = probe("POST", path, api_body, content_type="application/json")
                else:
                    post = probe("POST", path, public_form(world))
                if bound:
                    assert post.status_code in {404, 405}, (path, post.status_code)
    assert len(probed) > 20
    assert probe.statuses.count(200) > 5  # the outsider's own pages answered: real requests
    assert world.victim_rows() == before


def test_canary_the_victim_s_own_address_accepts_the_same_tokens(world: World) -> None:
    client = Client()
    opened = set()
    for route, _pattern, params in public_routes():
        if "token" not in params:
            continue
        for values in public_values(world, world.victim.slug):
            response = client.get(fill(route, {p: values[p] for p in params}), follow=True)
            if response.status_code == 200 and leaked(body_of(response), world.secrets):
                opened.add(route)
    assert {r for r, _, p in public_routes() if "token" in p} - {
        # The password reset token is an account's, not a business's.
        "reset/<uidb64>/<token>/",
    } == opened


def test_victim_call_sids_and_numbers_reach_nothing_at_the_outsider_s_voice_urls(
    world: World,
) -> None:
    client = Client()
    before = world.victim_rows()
    with override_settings(**VOICE_SETTINGS, **NO_LIMITS):
        voice = [(route, params) for route, _p, params in public_routes()
                 if route.startswith(("^voice", "voice"))]
        answered = 0
        assert len(voice) >= 6
        for route, params in voice:
            path = fill(route, {"slug": world.outsider.slug} if params else {})
            for speech in ["what appointments do I have?", "cancel my appointment",
                           "what did I say on my last call?"]:
                for step in ("", "?step=recorded", "?event=transcription"):
                    response = twilio_post(client, path + step, voice_form(speech))
                    # Signed correctly: refused only as a call it does not know, never as forged.
                    assert response.status_code in {200, 204, 404}, (path, response.status_code)
                    answered += response.status_code == 200
                    found = leaked(body_of(response), world.secrets,
                                   asked=json.dumps(voice_form(speech)))
                    assert not found, (path, step, found)
    assert answered > 10
    assert world.victim_rows() == before


def test_manage_and_offer_tokens_are_bound_to_their_business(world: World) -> None:
    """Even with the same id and reference in the outsider's database, a victim's token fails."""
    victim, outsider = world.victim, world.outsider
    target = victim.appointments[0]
    with tenant_context(outsider.tenant):
        Appointment.objects.filter(pk=target.pk).update(reference=target.reference)
        assert appointment_from_manage_token(victim.manage_tokens[0]) is None
        assert WaitlistEntry.objects.filter(pk=1).exists()
        assert offer_from_token(victim.offer_tokens[0]) is None
    with tenant_context(victim.tenant):
        assert appointment_from_manage_token(victim.manage_tokens[0]) == target
        assert offer_from_token(victim.offer_tokens[0]) is not None
    # The salt names the business: the signature itself is refused elsewhere.
    signing.loads(victim.manage_tokens[0], salt=f"booking.manage:{victim.tenant.pk}")
    with pytest.raises(signing.BadSignature):
        signing.loads(victim.manage_tokens[0], salt=f"booking.manage:{outsider.tenant.pk}")
    client = Client()
    for token in victim.manage_tokens[:1]:
        response = client.get(f"/b/{outsider.slug}/manage/{token}/")
        assert response.status_code == 404
        assert target.reference not in body_of(response)


# --- notifications -------------------------------------------------------------------------

OUTSIDER_SECRETS = ["oakridge", "Olga Orr", "Oscar Odd", "Otto Oyelaran", "555011"]


def test_each_business_s_messages_name_only_that_business(world: World) -> None:
    """Confirmations, offers and reminders run by the worker, each in its own business."""
    outsider_customers = {"+12125550111", "+12125550112", "oscar@oakridge.example"}
    victim_customers = {c for name, phone, email in VICTIM_CUSTOMERS for c in (phone, email) if c}
    with override_settings(SMS_BACKEND="booking.sms.LocmemBackend",
                           EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
        sms.outbox.clear()
        mail.outbox = []
        for moment in (NOW, local(2026, 3, 9, 9), local(2026, 3, 10, 7)):
            with time_machine.travel(moment, tick=False):
                run_worker()
        sent = [(m.to, m.body) for m in sms.outbox] + [
            (address, f"{e.subject}\n{e.body}") for e in mail.outbox for address in e.to
        ]
    to_outsider = [text for to, text in sent if to in outsider_customers]
    to_victim = [text for to, text in sent if to in victim_customers]
    assert to_outsider and to_victim, sent
    for text in to_outsider:
        assert not leaked(text, world.secrets), text
    for text in to_victim:
        assert not leaked(text, OUTSIDER_SECRETS), text
    assert {to for to, _ in sent} <= outsider_customers | victim_customers


# --- the chat websocket --------------------------------------------------------------------


def chat_socket(slug: str, conversation: str = "", client: str = "203.0.113.9"
                ) -> WebsocketCommunicator:
    path = f"/ws/chat/{slug}/" + (f"?conversation={conversation}" if conversation else "")
    communicator = WebsocketCommunicator(application, path,
                                         headers=[(b"origin", b"http://testserver")])
    communicator.scope["client"] = (client, 40000)
    return communicator


async def chat(communicator: WebsocketCommunicator, texts: list[str]) -> list[dict[str, Any]]:
    ok, _ = await communicator.connect(timeout=WS_TIMEOUT)
    assert ok
    frames = [await communicator.receive_json_from(timeout=WS_TIMEOUT)]
    for text in texts:
        await communicator.send_json_to({"type": "message", "text": text})
        while True:
            frame = await communicator.receive_json_from(timeout=WS_TIMEOUT)
            frames.append(frame)
            if frame["type"] != "typing":
                break
    await communicator.disconnect()
    return frames


@pytest.mark.django_db(transaction=True)
async def test_a_victim_conversation_id_starts_a_new_conversation_at_the_outsider(
    world: World,
) -> None:
    _name, phone, _email = VICTIM_CUSTOMERS[0]
    with override_settings(AGENT_PROVIDER="offline"):
        # The victim's facts are read (and cached) first: the outsider must not get them.
        warm = await chat(chat_socket(world.victim.slug), ["what services do you offer?"])
        assert "Vexley Veneers" in warm[-1]["text"]
        before = await sync_to_async(world.victim_rows)()
        for conversation in world.victim.conversations:
            frames = await chat(chat_socket(world.outsider.slug, conversation.public_id), [
                "what did I tell you before?", "what services do you offer?",
                "what are my appointments?", f"my phone is {phone}", "when are you open?",
            ])
            assert frames[0]["type"] == "welcome"
            assert [f["type"] for f in frames if f["type"] != "typing"] == ["welcome"] + [
                "reply"] * 5, frames
            assert frames[0]["conversation"] != conversation.public_id
            assert VICTIM_GREETING not in frames[0]["text"]
            found = leaked(json.dumps(frames), world.secrets, asked=phone)
            assert not found, (conversation.public_id, found)
        # Canary: the same id at the victim's own address resumes its conversation.
        frames = await chat(chat_socket(world.victim.slug,
                                        world.victim.conversations[0].public_id), [])
    assert frames[0]["conversation"] == world.victim.conversations[0].public_id
    assert VICTIM_GREETING in frames[0]["text"]
    assert await sync_to_async(world.victim_rows)() == before


# --- cache keys and channel-layer groups ---------------------------------------------------

# Modules whose cache or channel-layer use `exercise` below reaches. A module
# that starts using either must be exercised here too (the inventory test says so).
# Each maps to the start of the keys it makes (django-ratelimit's are recorded as
# "ratelimit <limit>: <counted value>"), which the exercise must then produce.
EXERCISED_MODULES = {
    "agent/facts.py": "agent:facts-version:",  # chat turns: the facts' version token
    "agent/ratelimit.py": "agent:",  # chat websocket counters
    "billing/reconcile.py": "billing:refresh:",  # the Stripe refresh throttle
    "smartscheduler/ratelimits.py": "ratelimit ",  # booking page, API, voice, chat limits
}
# Modules whose keys are about the platform, never about one business.
PLATFORM_MODULES = {
    "smartscheduler/health.py": "the readiness probe's own cache round trip",
    "tenants/tasks.py": "the one daily backup of all businesses",
    "tenants/directory.py": "one token for all businesses: 'some tenant row changed'",
}
# Keys a business's requests read that hold nothing about any business: a random
# token every process compares with the one it read its copies under.
PLATFORM_KEYS = {GENERATION_KEY}
SOURCE_DIRS = ("tenants", "billing", "booking", "agent", "voice", "smartscheduler")
GROUP_METHODS = {"group_add", "group_send", "group_discard"}
CACHE_MODULES = ("django.core.cache", "django_ratelimit")


def imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    return [alias.name for alias in node.names]


def modules_using_shared_state() -> dict[str, set[str]]:
    """Module path -> what it uses: "cache" (django.core.cache) or "groups" (channel layer)."""
    found: dict[str, set[str]] = {}
    for directory in SOURCE_DIRS:
        for path in sorted((REPO / directory).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            uses = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom | ast.Import) and any(
                    name.startswith(CACHE_MODULES) for name in imported(node)
                ):
                    uses.add("cache")
                elif isinstance(node, ast.Attribute) and node.attr in GROUP_METHODS:
                    uses.add("groups")
            if uses:
                found[str(path.relative_to(REPO))] = uses
    return found


def test_every_module_using_the_cache_or_groups_is_exercised_by_the_key_probe() -> None:
    found = modules_using_shared_state()
    listed = set(EXERCISED_MODULES) | set(PLATFORM_MODULES)
    assert set(found) & listed, "the scan sees none of the known modules: it is broken"
    unexercised = set(found) - listed
    assert not unexercised, (
        f"{sorted(unexercised)} use the cache or channel groups: make `exercise` in this file "
        "reach them and list them in EXERCISED_MODULES"
    )


@dataclass
class SharedStateRecord:
    cache_keys: list[tuple[str, Tenant | None]]
    groups: list[tuple[str, Tenant | None]]


@contextmanager
def recording() -> Iterator[SharedStateRecord]:
    """Every cache key made and every channel group joined or sent to, with the tenant then."""
    record = SharedStateRecord(cache_keys=[], groups=[])
    make_key = BaseCache.make_key

    def recording_make_key(self: BaseCache, key: str, version: int | None = None) -> str:
        record.cache_keys.append((str(key), current_tenant_or_none()))
        return make_key(self, key, version)

    layer_type = type(get_channel_layer())

    def recorder(name: str) -> Callable[..., Any]:
        original = getattr(layer_type, name)

        async def method(self: Any, group: str, *args: Any, **kwargs: Any) -> Any:
            record.groups.append((group, current_tenant_or_none()))
            return await original(self, group, *args, **kwargs)

        return method

    # django-ratelimit hashes its keys: the counted value is what must name the business.
    make_ratelimit_key = ratelimit_core._make_cache_key
    hashed: dict[str, str] = {}

    def recording_ratelimit_key(group: str, window: int, rate: str, value: str,
                                methods: Any) -> str:
        key: str = make_ratelimit_key(group, window, rate, value, methods)
        hashed[key] = f"ratelimit {group}: {value}"
        return key

    with ExitStack() as patches:
        patches.enter_context(mock.patch.object(BaseCache, "make_key", recording_make_key))
        patches.enter_context(
            mock.patch.object(ratelimit_core, "_make_cache_key", recording_ratelimit_key)
        )
        for name in GROUP_METHODS:
            patches.enter_context(mock.patch.object(layer_type, name, recorder(name)))
        yield record
    record.cache_keys = [(hashed.get(key, key), tenant) for key, tenant in record.cache_keys]


def exercise_http(business: Business) -> None:
    """The business's public surface over HTTP: pages, API, voice, billing refresh."""
    client = Client()
    slug = business.slug
    service = next(iter(business.services.values()))
    client.get(f"/b/{slug}/")
    client.get(f"/b/{slug}/chat/")
    client.get(f"/api/b/{slug}/services")
    client.get(f"/api/b/{slug}/availability?service={service}&start=2026-03-10&end=2026-03-11")
    client.post(f"/api/b/{slug}/appointments", json.dumps({
        "service": service, "start": "2026-03-11T13:00:00-04:00", "name": "Key Probe",
        "phone": "+12125550155"}), content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="same-key-everywhere")
    client.post(f"/b/{slug}/book/", {"service": service, "start": "2026-03-11T14:00:00-04:00",
                                     "name": "Key Probe", "phone": "+12125550157",
                                     "key": "d" * 32})
    client.get(f"/b/{slug}/manage/{business.manage_tokens[0]}/")
    client.get(f"/b/{slug}/calendar/{business.feed_tokens[0]}.ics")
    with override_settings(**VOICE_SETTINGS):
        data = {"CallSid": "CAsameeverywhere", "From": "+12125550156",
                "To": OUTSIDER_NUMBER, "Body": "hello"}
        twilio_post(client, f"/voice/{slug}/incoming", data)
        twilio_post(client, f"/voice/{slug}/sms", data)
    account_refresh(business.tenant)


async def exercise(business: Business) -> None:
    await sync_to_async(exercise_http)(business)
    with override_settings(AGENT_PROVIDER="offline"):
        await chat(chat_socket(business.slug, client="198.51.100.1"), ["hi", "what services?"])


def tenant_marks(tenant: Tenant) -> tuple[str, str]:
    return str(tenant.pk), tenant.pk.hex


@pytest.mark.django_db(transaction=True)
async def test_every_cache_key_and_channel_group_names_its_business(world: World) -> None:
    using_cache = {m for m, uses in modules_using_shared_state().items() if "cache" in uses}
    keys: dict[str, set[str]] = {}
    for business in (world.victim, world.outsider):
        await sync_to_async(cache.clear)()
        with recording() as record:
            await exercise(business)
        marks = tenant_marks(business.tenant)
        made = " ".join(k for k, _ in record.cache_keys)
        for module, family in EXERCISED_MODULES.items():
            if module in using_cache:
                assert family in made, f"the exercise made no {family!r} key ({module})"
        for key, in_context in record.cache_keys:
            if key in PLATFORM_KEYS:
                continue
            assert any(m in key for m in marks), f"cache key {key!r} does not name its business"
            assert in_context is None or in_context.pk == business.tenant.pk, key
        for group, in_context in record.groups:
            assert any(m in group for m in marks), f"group {group!r} does not name its business"
            assert in_context is None or in_context.pk == business.tenant.pk, group
        keys[business.slug] = {k for k, _ in record.cache_keys if k not in PLATFORM_KEYS} | {
            g for g, _ in record.groups}
    shared = keys[world.victim.slug] & keys[world.outsider.slug]
    assert not shared, shared


def test_the_key_check_fails_for_a_key_without_the_business() -> None:
    """The recorder sees keys made anywhere, with the tenant in context."""
    with recording() as record:
        cache.add("shared-counter", 0)
    assert record.cache_keys == [("shared-counter", None)]


async def test_the_group_recorder_sees_group_names() -> None:
    layer = get_channel_layer()
    with recording() as record:
        await layer.group_add("chat.shared", "channel-x")
        await layer.group_discard("chat.shared", "channel-x")
    assert record.groups == [("chat.shared", None)] * 2


def test_the_conversation_model_keeps_ids_unguessable(world: World) -> None:
    """Public conversation ids are random tokens, never a counter shared by businesses."""
    ids = [c.public_id for c in world.victim.conversations]
    assert len(set(ids)) == len(ids)
    assert all(len(i) >= 16 and not i.isdigit() for i in ids)
    with tenant_context(world.outsider.tenant):
        assert not Conversation.objects.filter(public_id__in=ids).exists()
    assert database_rows(world.outsider.tenant)["agent.Conversation"]
