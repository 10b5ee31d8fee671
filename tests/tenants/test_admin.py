from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client, RequestFactory

from booking.models import BusinessProfile
from tenants.context import tenant_context
from tenants.dashboard import TenantModelAdmin, dashboard_site
from tenants.models import Membership, Tenant
from tenants.services import tenant_set_status
from tests.conftest import MakeTenant

pytestmark = pytest.mark.django_db

PROFILES = "/dashboard/booking/businessprofile/"


def owner_of(tenant: Tenant) -> User:
    return tenant.memberships.get(role=Membership.Role.OWNER).user


@pytest.fixture
def alpha(make_tenant: MakeTenant) -> Tenant:
    tenant = make_tenant("alpha-dental", name="Alpha Dental", owner_password=None)
    with tenant_context(tenant):
        BusinessProfile.objects.create(display_name="Alpha Front Desk", address="1 Alpha Road")
    return tenant


@pytest.fixture
def beta(make_tenant: MakeTenant) -> Tenant:
    tenant = make_tenant("beta-salon", name="Beta Salon", owner_password=None)
    with tenant_context(tenant):
        # Beta's profile gets pk 2, an id that does not exist in Alpha's database.
        BusinessProfile.objects.create(display_name="placeholder").delete()
        BusinessProfile.objects.create(display_name="Beta Reception", address="9 Beta Street")
    return tenant


# The owners' dashboard


def test_owner_sees_the_business_name_with_no_profile_yet(
    client: Client, make_tenant: MakeTenant
) -> None:
    tenant = make_tenant(name="Gamma Physio", owner_password=None)
    client.force_login(owner_of(tenant))
    response = client.get("/dashboard/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Gamma Physio" in html
    assert f"/b/{tenant.slug}/" in html
    assert "Business profiles" in html


def test_anonymous_visitor_is_sent_to_the_site_login(client: Client) -> None:
    response = client.get("/dashboard/booking/businessprofile/", follow=True)
    assert response.redirect_chain[-1][0] == (
        "/login/?next=/dashboard/booking/businessprofile/"
    )
    assert response.status_code == 200


def test_owner_list_shows_only_their_own_rows(client: Client, alpha: Tenant, beta: Tenant) -> None:
    client.force_login(owner_of(alpha))
    html = client.get(PROFILES).content.decode()
    assert "Alpha Front Desk" in html
    assert "Beta Reception" not in html

    client.force_login(owner_of(beta))
    html = client.get(PROFILES).content.decode()
    assert "Beta Reception" in html
    assert "Alpha Front Desk" not in html


def test_owner_cannot_open_another_business_profile(
    client: Client, alpha: Tenant, beta: Tenant
) -> None:
    with tenant_context(beta):
        beta_pk = BusinessProfile.objects.get().pk
    client.force_login(owner_of(alpha))

    response = client.get(f"{PROFILES}{beta_pk}/change/")
    assert response.status_code in {302, 403, 404}
    assert "9 Beta Street" not in response.content.decode()
    followed = client.get(f"{PROFILES}{beta_pk}/change/", follow=True)
    assert "9 Beta Street" not in followed.content.decode()

    # The same id in Alpha's own database is Alpha's row, never Beta's.
    response = client.get(f"{PROFILES}1/change/")
    html = response.content.decode()
    assert "1 Alpha Road" in html
    assert "Beta" not in html


def test_owner_edit_lands_in_their_own_database_only(
    client: Client, alpha: Tenant, beta: Tenant
) -> None:
    client.force_login(owner_of(alpha))
    with tenant_context(alpha):
        profile = BusinessProfile.objects.get()
    data = {
        "display_name": "Alpha Dental Care",
        "address": "2 Alpha Road",
        "phone": "",
        "email": "",
        "slot_step_minutes": 30,
        "min_notice_minutes": 60,
        "max_days_ahead": 60,
        "cancellation_notice_minutes": 120,
        "reminder_offsets_minutes": "[1440]",
        "waitlist_hold_minutes": 15,
    }
    response = client.post(f"{PROFILES}{profile.pk}/change/", data)
    assert response.status_code == 302

    with tenant_context(alpha):
        assert BusinessProfile.objects.get().display_name == "Alpha Dental Care"
    with tenant_context(beta):
        assert list(BusinessProfile.objects.values_list("display_name", flat=True)) == [
            "Beta Reception"
        ]


def test_owner_adds_the_profile_with_the_business_zone(
    client: Client, make_tenant: MakeTenant
) -> None:
    tenant = make_tenant(name="Delta Spa", timezone="Europe/Paris", owner_password=None)
    client.force_login(owner_of(tenant))
    form = client.get(f"{PROFILES}add/")
    assert form.status_code == 200
    assert form.context["adminform"].form.initial["display_name"] == "Delta Spa"
    response = client.post(
        f"{PROFILES}add/",
        {
            "display_name": "Delta Spa",
            "slot_step_minutes": 15,
            "min_notice_minutes": 60,
            "max_days_ahead": 60,
            "cancellation_notice_minutes": 120,
            "reminder_offsets_minutes": "[1440, 120]",
            "waitlist_hold_minutes": 15,
        },
    )
    assert response.status_code == 302
    with tenant_context(tenant):
        profile = BusinessProfile.objects.get()
    assert profile.timezone == "Europe/Paris"
    # One profile per business: no second add.
    assert client.get(f"{PROFILES}add/").status_code == 403


def test_history_of_a_row_is_not_shown_in_the_dashboard(client: Client, alpha: Tenant) -> None:
    # Admin log rows are shared by all businesses and keyed by ids that repeat.
    client.force_login(owner_of(alpha))
    assert client.get(f"{PROFILES}1/history/").status_code == 404


def test_user_without_membership_gets_no_dashboard(client: Client, alpha: Tenant) -> None:
    stranger = User.objects.create_user("stranger@example.com", "stranger@example.com")
    client.force_login(stranger)

    response = client.get("/dashboard/", follow=True)
    assert response.status_code == 403
    assert "does not manage a business" in response.content.decode()

    response = client.get(PROFILES, follow=True)
    assert "Alpha" not in response.content.decode()
    assert response.status_code == 403


def test_superuser_without_membership_gets_no_dashboard(client: Client, alpha: Tenant) -> None:
    root = User.objects.create_superuser("root@example.com", "root@example.com")
    client.force_login(root)
    response = client.get(PROFILES, follow=True)
    assert response.status_code == 403
    assert "1 Alpha Road" not in response.content.decode()


def test_suspended_business_owner_sees_a_notice_not_data(client: Client, alpha: Tenant) -> None:
    tenant_set_status(tenant=alpha, status=Tenant.Status.SUSPENDED)
    client.force_login(owner_of(alpha))

    for url in ["/dashboard/", PROFILES, f"{PROFILES}1/change/"]:
        response = client.get(url)
        assert response.status_code == 403, url
        html = response.content.decode()
        assert "This business is suspended" in html
        assert "1 Alpha Road" not in html
        assert "Alpha Front Desk" not in html


def test_staff_member_may_edit_but_not_delete(alpha: Tenant) -> None:
    staff = User.objects.create_user("staff@example.com", "staff@example.com")
    Membership.objects.create(user=staff, tenant=alpha, role=Membership.Role.STAFF)
    model_admin = TenantModelAdmin(BusinessProfile, dashboard_site)

    def request_for(user: User) -> object:
        request = RequestFactory().get("/dashboard/")
        request.user = user
        request.tenant = alpha  # type: ignore[attr-defined]
        return request

    owner_request, staff_request = request_for(owner_of(alpha)), request_for(staff)
    assert model_admin.has_delete_permission(owner_request)
    assert model_admin.has_change_permission(staff_request)
    assert model_admin.has_add_permission(staff_request)
    assert not model_admin.has_delete_permission(staff_request)
    stranger = User.objects.create_user("nobody@example.com", "nobody@example.com")
    assert not model_admin.has_view_permission(request_for(stranger))


# The business switcher


@pytest.fixture
def two_business_owner(make_tenant: MakeTenant) -> tuple[User, Tenant, Tenant]:
    first = make_tenant("first-biz", name="First Clinic", owner_email="multi@example.com",
                        owner_password=None)
    second = make_tenant("second-biz", name="Second Salon", owner_email="multi@example.com",
                         owner_password=None)
    return owner_of(first), first, second


def test_switcher_moves_the_dashboard_to_another_own_business(
    client: Client, two_business_owner: tuple[User, Tenant, Tenant]
) -> None:
    user, first, second = two_business_owner
    client.force_login(user)
    index = client.get("/dashboard/")
    assert index.context["dashboard_tenant"] == first
    html = index.content.decode()
    assert 'action="/account/switch-business/"' in html
    assert "Second Salon" in html  # offered in the switcher

    response = client.post("/account/switch-business/", {"tenant": str(second.pk)})
    assert response.status_code == 302
    assert client.session["active_tenant_id"] == str(second.pk)
    assert client.get("/dashboard/").context["dashboard_tenant"] == second


def test_switcher_is_hidden_with_a_single_business(client: Client, alpha: Tenant) -> None:
    client.force_login(owner_of(alpha))
    assert "switch-business" not in client.get("/dashboard/").content.decode()


def test_switcher_refuses_a_business_the_user_is_not_a_member_of(
    client: Client, two_business_owner: tuple[User, Tenant, Tenant], alpha: Tenant
) -> None:
    user, first, _second = two_business_owner
    client.force_login(user)
    client.post("/account/switch-business/", {"tenant": str(first.pk)})

    for value in [str(alpha.pk), "not-a-uuid", ""]:
        response = client.post("/account/switch-business/", {"tenant": value})
        assert response.status_code == 404
    assert client.session["active_tenant_id"] == str(first.pk)
    assert client.get("/dashboard/").context["dashboard_tenant"] == first


def test_switcher_is_post_only_and_needs_login(
    client: Client, two_business_owner: tuple[User, Tenant, Tenant]
) -> None:
    user, _first, second = two_business_owner
    response = client.post("/account/switch-business/", {"tenant": str(second.pk)})
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    client.force_login(user)
    assert client.get("/account/switch-business/").status_code == 405


def test_owner_can_switch_away_from_a_suspended_business(
    client: Client, two_business_owner: tuple[User, Tenant, Tenant]
) -> None:
    user, first, second = two_business_owner
    tenant_set_status(tenant=first, status=Tenant.Status.SUSPENDED)
    client.force_login(user)
    notice = client.get("/dashboard/")
    assert notice.status_code == 403
    assert "Second Salon" in notice.content.decode()

    client.post("/account/switch-business/", {"tenant": str(second.pk)})
    response = client.get("/dashboard/")
    assert response.status_code == 200
    assert response.context["dashboard_tenant"] == second


# The platform console


@pytest.fixture
def superuser(db: None) -> User:
    return User.objects.create_superuser("root@example.com", "root@example.com")


def test_platform_console_refuses_non_superusers(client: Client, alpha: Tenant) -> None:
    client.force_login(owner_of(alpha))
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")

    staff = User.objects.create_user("ops@example.com", "ops@example.com", is_staff=True)
    client.force_login(staff)
    for url in ["/admin/", "/admin/tenants/tenant/"]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/")


def test_platform_console_signs_in_only_through_the_throttled_login(
    client: Client, alpha: Tenant
) -> None:
    # Admin's own form would bypass the login rate limits and the account lockout.
    User.objects.create_superuser("boss@example.com", "boss@example.com", "long-secret-pass-9")
    response = client.get("/admin/login/?next=/admin/tenants/tenant/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/admin/tenants/tenant/"
    response = client.post("/admin/login/", {"username": "boss@example.com",
                                             "password": "long-secret-pass-9"})
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert "_auth_user_id" not in client.session

    client.force_login(owner_of(alpha))
    assert client.get("/admin/login/").status_code == 403


def test_platform_console_lists_every_business(
    client: Client, superuser: User, alpha: Tenant, beta: Tenant
) -> None:
    client.force_login(superuser)
    assert client.get("/admin/").status_code == 200
    html = client.get("/admin/tenants/tenant/").content.decode()
    assert "Alpha Dental" in html and "Beta Salon" in html
    assert "alpha-dental" in html

    found = client.get("/admin/tenants/tenant/", {"q": "beta"}).content.decode()
    assert "Beta Salon" in found and "Alpha Dental" not in found
    by_owner = client.get("/admin/tenants/tenant/", {"q": owner_of(alpha).email})
    assert "Alpha Dental" in by_owner.content.decode()

    change = client.get(f"/admin/tenants/tenant/{alpha.pk}/change/").content.decode()
    assert owner_of(alpha).email in change  # the membership inline

    assert client.get("/admin/auth/user/").status_code == 200
    assert client.get("/admin/auth/group/").status_code == 200


def test_suspend_and_activate_actions(
    client: Client, superuser: User, alpha: Tenant, beta: Tenant
) -> None:
    client.force_login(superuser)
    response = client.post(
        "/admin/tenants/tenant/", {"action": "suspend", "_selected_action": [str(alpha.pk)]}
    )
    assert response.status_code == 302
    alpha.refresh_from_db()
    beta.refresh_from_db()
    assert alpha.status == Tenant.Status.SUSPENDED
    assert beta.status == Tenant.Status.ACTIVE
    assert client.get("/b/alpha-dental/").status_code == 403

    client.post(
        "/admin/tenants/tenant/", {"action": "activate", "_selected_action": [str(alpha.pk)]}
    )
    alpha.refresh_from_db()
    assert alpha.status == Tenant.Status.ACTIVE


def test_platform_console_cannot_add_or_delete_a_business_row(
    client: Client, superuser: User, alpha: Tenant
) -> None:
    # Either would leave a business without its database or a database without a business.
    client.force_login(superuser)
    assert client.get("/admin/tenants/tenant/add/").status_code == 403
    assert client.get(f"/admin/tenants/tenant/{alpha.pk}/delete/").status_code == 403
