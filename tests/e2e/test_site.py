from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def test_product_page_shows_the_three_plans_and_the_demo(page: Any) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()

    expected = {
        "starter": ("$49.99", "100 appointments a month", ["Chat"]),
        "standard": ("$99.99", "500 appointments a month", ["Chat", "Waitlist"]),
        "premium": ("$150.99", "Unlimited appointments", ["Chat", "Waitlist", "Phone"]),
    }
    for code, (price, limit, features) in expected.items():
        card = page.locator(f'[data-plan="{code}"]')
        expect(card.locator(".price")).to_contain_text(price)
        expect(card.locator(".limit")).to_have_text(limit)
        included = [text.split()[0] for text in card.locator("li.yes").all_inner_texts()]
        assert included == features, code
        expect(card.get_by_role("link", name="Start")).to_have_attribute(
            "href", f"/signup/?plan={code}"
        )
    expect(page.get_by_role("link", name="Try the demo booking page")).to_have_attribute(
        "href", "/b/demo-dental/"
    )
    # The stylesheet is served (by WhiteNoise) and applied.
    assert page.evaluate("getComputedStyle(document.body).display") == "flex"


@pytest.mark.parametrize("path", ["/", "/signup/", "/login/", "/password-reset/"])
def test_site_pages_carry_no_inline_script(page: Any, path: str) -> None:
    # Scripts live in static files so a strict Content-Security-Policy can forbid inline ones.
    page.goto(path)
    assert page.locator("script:not([src])").count() == 0
    assert page.locator("[onclick], [onload], [onsubmit], [onchange]").count() == 0
