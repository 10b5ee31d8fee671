from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ARTIFACTS, E2EServer

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def demo(e2e_server: E2EServer) -> str:
    e2e_server.manage("seed_demo")
    return "/b/demo-dental/"


def test_customer_books_the_first_free_time_and_cancels_it(page: Any, demo: str) -> None:
    page.goto(demo)
    expect(page.get_by_role("heading", level=1)).to_have_text("Book an appointment")
    expect(page.locator(".business-name")).to_have_text("Bright Smile Dental")
    expect(page.locator("#chat-launcher")).to_have_attribute("data-business", "demo-dental")

    page.get_by_role("link", name=re.compile(r"^Checkup")).click()
    expect(page.locator(".chosen")).to_contain_text("Checkup")
    expect(page.get_by_role("link", name="Anyone")).to_have_attribute("aria-current", "true")
    slots = page.locator("#slot-region .slot")
    expect(slots.first).to_be_visible()
    expect(page.locator("#slots-title")).to_contain_text("New York time")

    # Another day's times arrive from the JSON API without a page load.
    days = page.locator("a.day")
    if days.count() > 1:
        page.evaluate("window.stillHere = true")
        second = days.nth(1)
        label = second.get_attribute("data-label")
        second.click()
        expect(page.locator("#slots-title")).to_contain_text(f"Free times on {label}")
        expect(second).to_have_attribute("aria-current", "date")
        assert page.evaluate("window.stillHere") is True
        expect(page).to_have_url(re.compile(r"date=\d{4}-\d{2}-\d{2}"))
        expect(slots.first).to_be_visible()

    chosen_time = slots.first.inner_text()
    slots.first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your booking")
    expect(page.locator(".summary")).to_contain_text(chosen_time)
    page.get_by_label("Your name").fill("Grace Hopper")
    page.get_by_label("Mobile phone").fill("(212) 555-0142")
    page.get_by_role("button", name="Confirm booking").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("You're booked!")
    reference = page.locator("#reference").inner_text()
    assert re.fullmatch(r"[2-9A-Z]{3}-[2-9A-Z]{3}", reference)
    expect(page.locator(".summary-list")).to_contain_text(chosen_time)
    expect(page.get_by_role("link", name="Add to calendar")).to_have_attribute(
        "href", re.compile(r"/appointment\.ics$")
    )

    page.get_by_role("link", name="Change or cancel").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your appointment")
    expect(page.locator(".summary-list")).to_contain_text(reference)
    page.get_by_role("link", name="Cancel appointment").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Cancel this appointment?")
    page.get_by_role("button", name="Yes, cancel it").click()

    expect(page.locator(".status-badge")).to_have_text("Cancelled")
    expect(page.locator("#cancelled-note")).to_contain_text("This appointment was cancelled")
    expect(page.get_by_role("link", name="Cancel appointment")).to_have_count(0)


def test_booking_page_fits_a_phone(page: Any, demo: str) -> None:
    page.set_viewport_size(PHONE)
    page.goto(demo)
    page.get_by_role("link", name=re.compile(r"^Cleaning")).click()
    expect(page.locator("#slot-region .slot").first).to_be_visible()
    # Nothing runs off the side of a phone screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    tap = page.locator("#slot-region .slot").first.bounding_box()
    assert tap is not None and tap["height"] >= 44
    assert page.locator("script:not([src])").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "booking-page-phone.png"), full_page=True)
