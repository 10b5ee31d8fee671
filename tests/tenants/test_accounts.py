from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client

from tenants.db import tenant_db_dir, tenant_db_path
from tenants.models import Membership, Tenant
from tenants.provisioning import ProvisioningError
from tenants.services import owner_get_or_create
from tests.conftest import MakeTenant

PASSWORD = "plum-orchard-Lantern-42"

pytestmark = pytest.mark.django_db


def signup_data(**overrides: str) -> dict[str, str]:
    data = {
        "name": "Bright Smile Dental",
        "slug": "bright-smile",
        "timezone": "America/New_York",
        "plan": "standard",
        "email": "Owner@Bright-Smile.example",
        "password": PASSWORD,
    }
    data.update(overrides)
    return data


def database_files() -> set[str]:
    directory = tenant_db_dir()
    if not directory.exists():
        return set()
    return {p.name for p in directory.iterdir() if not p.name.startswith("_template")}


def is_logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


# Signup


def test_signup_creates_owner_business_membership_and_database(client: Client) -> None:
    response = client.post("/signup/", signup_data())

    assert response.status_code == 302
    tenant = Tenant.objects.get(slug="bright-smile")
    assert tenant.name == "Bright Smile Dental"
    assert tenant.timezone == "America/New_York"
    # The chosen paid plan is not granted by the form: the owner is sent to pay for it.
    assert tenant.plan == "starter"
    assert response["Location"] == "/dashboard/billing/"
    owner = User.objects.get(username="owner@bright-smile.example")
    assert owner.email == "owner@bright-smile.example"
    assert not owner.is_staff and not owner.is_superuser
    membership = Membership.objects.get(user=owner, tenant=tenant)
    assert membership.role == Membership.Role.OWNER
    assert tenant_db_path(tenant.pk).is_file()
    # Logged in and working on the new business straight away.
    assert client.session["_auth_user_id"] == str(owner.pk)
    assert client.session["active_tenant_id"] == str(tenant.pk)
    dashboard = client.get("/dashboard/")
    assert dashboard.status_code == 200
    assert "Bright Smile Dental" in dashboard.content.decode()


def test_signup_stores_an_argon2_password_hash(client: Client) -> None:
    client.post("/signup/", signup_data())
    owner = User.objects.get(username="owner@bright-smile.example")
    assert owner.password.startswith("argon2")
    assert owner.check_password(PASSWORD)


def test_signup_with_empty_slug_takes_a_free_one_from_the_name(
    client: Client, make_tenant: MakeTenant
) -> None:
    make_tenant("bright-smile-dental", owner_password=None)
    response = client.post("/signup/", signup_data(slug=""))
    assert response.status_code == 302
    assert Tenant.objects.filter(slug="bright-smile-dental-2", name="Bright Smile Dental").exists()


def test_signup_on_starter_lands_in_the_dashboard(client: Client) -> None:
    response = client.post("/signup/", signup_data(plan="starter", slug="plain-start"))

    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
    assert Tenant.objects.get(slug="plain-start").plan == "starter"


def test_signup_form_preselects_the_plan_from_the_product_page(client: Client) -> None:
    response = client.get("/signup/?plan=premium")
    assert response.status_code == 200
    assert response.context["form"]["plan"].value() == "premium"
    assert client.get("/signup/?plan=bogus").context["form"]["plan"].value() == "starter"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"slug": "taken-slug"}, "slug"),
        ({"slug": "admin"}, "slug"),
        ({"slug": "dashboard"}, "slug"),
        ({"slug": "Not A Slug!"}, "slug"),
        ({"slug": "-edge-"}, "slug"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "existing@example.com"}, "email"),
        ({"password": "short"}, "password"),
        ({"password": "password123"}, "password"),
        ({"password": "owner@bright-smile.example"}, "password"),
        ({"name": "   "}, "name"),
        ({"plan": "enterprise"}, "plan"),
    ],
)
def test_invalid_signup_shows_the_error_and_creates_nothing(
    client: Client, make_tenant: MakeTenant, overrides: dict[str, str], field: str
) -> None:
    make_tenant("taken-slug", owner_email="existing@example.com", owner_password=None)
    tenants, users, files = Tenant.objects.count(), User.objects.count(), database_files()

    response = client.post("/signup/", signup_data(**overrides))

    assert response.status_code == 200
    assert response.context["form"].errors[field]
    assert (Tenant.objects.count(), User.objects.count()) == (tenants, users)
    assert database_files() == files
    assert not is_logged_in(client)


def test_failed_provisioning_leaves_no_tenant_no_user_no_file(client: Client) -> None:
    files = database_files()
    with mock.patch(
        "tenants.services.provision_database",
        autospec=True,
        side_effect=ProvisioningError("disk full"),
    ) as provision:
        response = client.post("/signup/", signup_data())

    provision.assert_called_once()
    assert response.status_code == 200
    assert "could not set up your business" in response.content.decode()
    assert not Tenant.objects.exists()
    assert not User.objects.exists()
    assert not Membership.objects.exists()
    assert database_files() == files
    assert not is_logged_in(client)


def test_signed_in_owner_visiting_signup_goes_to_the_dashboard(
    client: Client, make_tenant: MakeTenant
) -> None:
    tenant = make_tenant(owner_password=None)
    client.force_login(tenant.memberships.get().user)
    response = client.get("/signup/")
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"


# Login and logout


@pytest.fixture
def owner(db: None) -> User:
    user, _ = owner_get_or_create(email="Dana@Example.com", password=PASSWORD)
    return user


@pytest.mark.parametrize("typed", ["dana@example.com", "DANA@EXAMPLE.COM", "  Dana@example.com "])
def test_login_by_email_in_any_case(client: Client, owner: User, typed: str) -> None:
    page = client.get("/login/")
    assert page.context["form"].fields["username"].label == "Email"

    response = client.post("/login/", {"username": typed, "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
    assert client.session["_auth_user_id"] == str(owner.pk)


def test_login_with_wrong_password_fails(client: Client, owner: User) -> None:
    response = client.post("/login/", {"username": "dana@example.com", "password": PASSWORD + "x"})
    assert response.status_code == 200
    assert "do not match" in response.content.decode()
    assert not is_logged_in(client)


def test_login_follows_a_safe_next_and_ignores_an_offsite_one(client: Client, owner: User) -> None:
    response = client.post(
        "/login/?next=/dashboard/booking/",
        {"username": "dana@example.com", "password": PASSWORD, "next": "/dashboard/booking/"},
    )
    assert response["Location"] == "/dashboard/booking/"
    client.post("/logout/")
    response = client.post(
        "/login/",
        {"username": "dana@example.com", "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response["Location"] == "/dashboard/"


def test_login_gives_a_new_session_key(client: Client, owner: User) -> None:
    session = client.session
    session["visited"] = True
    session.save()
    before = session.session_key
    assert client.cookies[settings.SESSION_COOKIE_NAME].value == before

    client.post("/login/", {"username": "dana@example.com", "password": PASSWORD})

    after = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert after and after != before
    assert client.session["_auth_user_id"] == str(owner.pk)


def test_session_cookie_is_httponly_samesite_lax_and_secure(client: Client, owner: User) -> None:
    response = client.post("/login/", {"username": "dana@example.com", "password": PASSWORD})
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["secure"] is True


def test_logout_is_post_only(client: Client, owner: User) -> None:
    client.force_login(owner)

    assert client.get("/logout/").status_code == 405
    assert is_logged_in(client)

    response = client.post("/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert not is_logged_in(client)


# Password reset


def reset_link_from(message: Any) -> str:
    match = re.search(r"https?://[^/\s]+(/reset/[^\s]+/)", message.body)
    assert match, message.body
    return match[1]


def test_password_reset_sends_a_working_link(client: Client, owner: User) -> None:
    response = client.post("/password-reset/", {"email": "DANA@example.com"})
    assert response.status_code == 302
    assert response["Location"] == "/password-reset/sent/"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["dana@example.com"]
    assert "password" in message.subject.lower()

    link = reset_link_from(message)
    # Django swaps the token for a session marker, then shows the form.
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    assert form_page.context["validlink"] is True
    set_password_url = form_page.redirect_chain[-1][0]
    new_password = "new-Harbour-lights-77"
    done = client.post(
        set_password_url, {"new_password1": new_password, "new_password2": new_password}
    )
    assert done.status_code == 302
    assert done["Location"] == "/reset/done/"

    owner.refresh_from_db()
    assert owner.check_password(new_password)
    assert owner.password.startswith("argon2")
    # The link works once.
    assert client.get(link, follow=True).context["validlink"] is False


def test_password_reset_for_unknown_email_sends_nothing_and_says_the_same(client: Client) -> None:
    response = client.post("/password-reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert response["Location"] == "/password-reset/sent/"
    assert mail.outbox == []


# Session limits (SessionExpiryMiddleware)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_idle_session_is_logged_out(client: Client, make_tenant: MakeTenant) -> None:
    tenant = make_tenant(owner_password=None)
    user = tenant.memberships.get().user
    idle = timedelta(seconds=settings.SESSION_IDLE_SECONDS)
    with time_machine.travel(START, tick=False) as traveller:
        client.force_login(user)
        assert client.get("/dashboard/").status_code == 200
        # Activity just inside the limit keeps the session going past one idle period.
        traveller.shift(idle - timedelta(minutes=5))
        assert client.get("/dashboard/").status_code == 200
        traveller.shift(idle - timedelta(minutes=5))
        assert client.get("/dashboard/").status_code == 200

        traveller.shift(idle + timedelta(seconds=1))
        response = client.get("/dashboard/")

    assert response.status_code == 302
    assert not is_logged_in(client)


def test_session_ends_at_the_absolute_limit_even_when_active(
    client: Client, make_tenant: MakeTenant
) -> None:
    tenant = make_tenant(owner_password=None)
    user = tenant.memberships.get().user
    absolute = timedelta(seconds=settings.SESSION_COOKIE_AGE)
    step = timedelta(seconds=settings.SESSION_IDLE_SECONDS) - timedelta(minutes=10)
    with time_machine.travel(START, tick=False) as traveller:
        client.force_login(user)
        assert client.get("/dashboard/").status_code == 200
        elapsed = timedelta(0)
        while elapsed + step < absolute:
            traveller.shift(step)
            elapsed += step
            assert client.get("/dashboard/").status_code == 200, elapsed
        traveller.shift(absolute - elapsed + timedelta(seconds=1))
        response = client.get("/dashboard/")

    assert response.status_code == 302
    assert not is_logged_in(client)


def test_signup_database_is_named_by_the_tenant_id_not_the_slug(client: Client) -> None:
    before = database_files()
    client.post("/signup/", signup_data())
    tenant = Tenant.objects.get(slug="bright-smile")
    assert database_files() - before == {f"{tenant.pk}.sqlite3"}
