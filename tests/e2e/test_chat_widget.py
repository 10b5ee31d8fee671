"""The chat widget on a business's own website (another origin), booking with the offline agent."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import E2EServer

pytestmark = pytest.mark.e2e

SLUG = "widget-dental"
EVERY_DAY = [["08:00", "20:00"]]
SETUP = {
    "name": "Widget Dental",
    "timezone": "America/New_York",
    "services": [{"name": "Cleaning", "duration_minutes": 60, "price": "120.00"}],
    "staff": [{"name": "Dr. Lee", "services": ["Cleaning"],
               "hours": dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat", "sun"),
                                      EVERY_DAY)}],
}


@pytest.fixture(scope="module")
def business_site(e2e_server: E2EServer) -> Iterator[str]:
    """A business's own website on another origin (localhost vs 127.0.0.1), embedding the widget."""
    page = ""

    class Site(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = page.encode()
            self.send_response(200 if self.path == "/" else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    server.daemon_threads = True
    site_url = f"http://localhost:{server.server_address[1]}"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Widget Dental</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"></head>
<body><h1>Widget Dental</h1><p>Friendly dentists since 1999.</p>
<script src="{e2e_server.url}/widget.js" data-business="{SLUG}" async></script>
</body></html>"""

    e2e_server.manage("create_tenant", "--slug", SLUG, "--name", "Widget Dental",
                      "--timezone", "America/New_York", "--owner-email", "owner@widget.example",
                      "--plan", "starter")
    setup_file = e2e_server.var_dir / "widget-setup.json"
    Path(setup_file).write_text(json.dumps(SETUP))
    e2e_server.manage("tenant_config", SLUG, "--import", str(setup_file))
    e2e_server.manage("chat_settings", SLUG, "--allow-domain", site_url)

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site_url
    finally:
        server.shutdown()
        server.server_close()


def test_a_customer_books_through_the_widget_on_the_business_site(
    page: Any, e2e_server: E2EServer, business_site: str
) -> None:
    page.goto(business_site + "/")
    button = page.get_by_role("button", name="Chat with us")
    expect(button).to_be_visible()
    button.click()
    expect(button).to_have_attribute("aria-expanded", "true")

    chat = page.frame_locator("#smart-scheduler-chat-panel iframe")
    log = chat.locator("#chat-log")
    expect(log.locator(".from-assistant").first).to_contain_text(
        "booking assistant of Widget Dental"
    )
    expect(chat.locator("#chat-status")).to_have_text("Online")

    def say(text: str) -> str:
        replies = log.locator(".from-assistant")
        before = replies.count()
        chat.get_by_label("Your message").fill(text)
        chat.get_by_label("Your message").press("Enter")
        expect(log.locator(".from-user").last).to_have_text(text)
        expect(replies).to_have_count(before + 1)
        return str(replies.last.inner_text())

    for text in ("I'd like to book a cleaning tomorrow at 10am", "Jane Doe", "212-555-0142"):
        say(text)
    done = say("yes")
    reference = re.search(r"\b([A-Z0-9]{3}-[A-Z0-9]{3})\b", done)
    assert reference, done

    report = json.loads(e2e_server.manage("tenant_report", SLUG, "--json").stdout)
    booked = [a for a in report["appointments"] if a["reference"] == reference[1]]
    assert len(booked) == 1
    assert booked[0]["channel"] == "chat"
    assert booked[0]["customer_name"] == "Jane Doe"
    assert booked[0]["customer_phone"] == "+12125550142"
    assert booked[0]["start"].endswith("T10:00:00-05:00") or booked[0]["start"].endswith(
        "T10:00:00-04:00")

    # The chat's own close button (inside the frame) closes the panel on the host page.
    chat.get_by_role("button", name="Close chat").click()
    expect(page.locator("#smart-scheduler-chat-panel")).to_be_hidden()
    expect(button).to_have_attribute("aria-expanded", "false")


def test_the_widget_is_usable_on_a_phone(
    browser: Any, e2e_server: E2EServer, business_site: str
) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 667}, is_mobile=True,
                                  has_touch=True)
    try:
        page = context.new_page()
        page.goto(business_site + "/")
        page.get_by_role("button", name="Chat with us").click()
        panel = page.locator("#smart-scheduler-chat-panel")
        expect(panel).to_be_visible()
        box = panel.bounding_box()
        assert box == {"x": 0, "y": 0, "width": 375, "height": 667}
        chat = page.frame_locator("#smart-scheduler-chat-panel iframe")
        expect(chat.locator("#chat-status")).to_have_text("Online")
        expect(chat.get_by_role("button", name="Close chat")).to_be_visible()
    finally:
        context.close()
