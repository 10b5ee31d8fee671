"""The owners' dashboard (Django's admin) and the error pages under the strict CSP.

The ``page`` fixture fails a test on any console error, and Chromium reports
every script, style or handler the policy refuses there: these pages must work
with no inline code allowed.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import E2EServer

pytestmark = pytest.mark.e2e

SLUG = "csp-dental"
EMAIL = "owner@csp-dental.example"
PASSWORD = "quartz-Meadow-Violin-73"

DASHBOARD_PAGES = [
    "/dashboard/",
    "/dashboard/calendar/",
    "/dashboard/booking/appointment/",
    "/dashboard/booking/appointment/add/",
    "/dashboard/booking/service/",
    "/dashboard/booking/service/add/",
    "/dashboard/booking/closure/add/",
    "/dashboard/booking/customer/",
    "/dashboard/agent/conversation/",
    "/dashboard/billing/",
]


@pytest.fixture(scope="module")
def owner(e2e_server: E2EServer) -> str:
    e2e_server.manage("create_tenant", "--slug", SLUG, "--name", "CSP Dental",
                      "--timezone", "America/New_York", "--owner-email", EMAIL,
                      "--owner-password", PASSWORD, "--plan", "premium")
    return EMAIL


def log_in(page: Any, email: str) -> None:
    page.goto("/login/?next=/dashboard/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url("/dashboard/")


def test_dashboard_pages_run_under_the_policy(page: Any, owner: str) -> None:
    log_in(page, owner)
    for path in DASHBOARD_PAGES:
        response = page.goto(path)
        assert response is not None and response.status < 400, (path, response and response.status)
        policy = [d.strip() for d in response.headers["content-security-policy"].split(";")]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy, path
        expect(page.locator("#site-name")).to_contain_text("CSP Dental")

    # The admin's date and time shortcuts build their pop-ups from script.
    page.goto("/dashboard/booking/closure/add/")
    calendar_link = page.locator(".datetimeshortcuts a").first
    if calendar_link.count():
        calendar_link.click()


def test_error_pages_run_under_the_policy(page: Any) -> None:
    response = page.goto("/no-such-page/")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("We couldn't find that page")
    # The site's stylesheet applies: nothing of the page was refused.
    assert page.evaluate("getComputedStyle(document.body).display") == "flex"
