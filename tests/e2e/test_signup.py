from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def test_new_owner_signs_up_and_lands_in_their_dashboard(page: Any) -> None:
    page.goto("/")
    expect(page.locator("header")).to_contain_text("Smart Scheduler")
    page.locator('[data-plan="premium"]').get_by_role("link", name="Start Premium").click()
    expect(page).to_have_url("/signup/?plan=premium")
    expect(page.get_by_label("Plan")).to_have_value("premium")

    page.get_by_label("Business name").fill("Harbor View Dental")
    # The booking address follows the name (static/js/signup.js).
    expect(page.get_by_label("Booking page address")).to_have_value("harbor-view-dental")
    page.get_by_label("Time zone").select_option("America/Chicago")
    page.get_by_label("Your email").fill("Owner@HarborView.example")
    page.get_by_label("Password").fill("tide-Pool-Lantern-58")
    page.get_by_role("button", name="Create my business").click()

    # The form grants no paid plan: the owner lands on the plan page to upgrade.
    expect(page).to_have_url("/dashboard/billing/")
    expect(page.locator("#site-name")).to_contain_text("Harbor View Dental")
    expect(page.get_by_text("Your business starts on Starter")).to_be_visible()
    page.goto("/dashboard/")
    expect(page.locator("#site-name")).to_contain_text("Harbor View Dental")
    expect(page.locator("#business-summary")).to_contain_text("/b/harbor-view-dental/")

    session = [c for c in page.context.cookies() if c["name"] == "sessionid"]
    assert session and session[0]["secure"] and session[0]["httpOnly"]

    # Logging out and back in by email (any case) returns to the same business.
    page.get_by_role("button", name="Log out").click()
    page.goto("/dashboard/")
    expect(page).to_have_url("/login/?next=/dashboard/")
    page.get_by_label("Email").fill("OWNER@harborview.example")
    page.get_by_label("Password").fill("tide-Pool-Lantern-58")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url("/dashboard/")
    expect(page.locator("#site-name")).to_contain_text("Harbor View Dental")


def test_signup_errors_are_shown_next_to_the_field(page: Any) -> None:
    page.goto("/signup/")
    page.get_by_label("Business name").fill("Admin")
    page.get_by_label("Booking page address").fill("admin")
    page.get_by_label("Your email").fill("someone@example.com")
    page.get_by_label("Password").fill("tide-Pool-Lantern-58")
    page.get_by_role("button", name="Create my business").click()

    expect(page).to_have_url("/signup/")
    expect(page.locator(".field.has-error")).to_contain_text("admin is reserved")
