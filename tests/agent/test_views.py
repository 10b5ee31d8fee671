"""The widget script, the framed chat page, the dashboard screens and the commands."""

from __future__ import annotations

import dataclasses
import io
import json
import re

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from agent.admin import ChatSettingsForm
from agent.engine import chat_settings_get, conversation_start, conversation_turn
from agent.models import ChatSettings, Conversation
from agent.widget import frame_ancestors, frame_source_normalize
from billing.plans import PLANS
from tenants.models import Membership, Tenant
from tests.booking.conftest import Shop

CHAT_CSP = re.compile(r"frame-ancestors ([^;]+)")


def chat_url(tenant: Tenant) -> str:
    return f"/b/{tenant.slug}/chat/"


def allow(*domains: str) -> None:
    row = chat_settings_get()
    row.allowed_frame_domains = list(domains)
    row.save()


def owner_of(tenant: Tenant) -> User:
    return tenant.memberships.get(role=Membership.Role.OWNER).user


# --- the chat page ------------------------------------------------------------------------


def test_only_the_chat_page_may_be_framed_by_the_owners_sites(
    client: Client, shop: Shop
) -> None:
    allow("https://www.example.com", "*.example.org")
    response = client.get(chat_url(shop.tenant))
    assert response.status_code == 200
    assert "X-Frame-Options" not in response
    policy = response["Content-Security-Policy"]
    assert CHAT_CSP.search(policy)[1] == "'self' https://www.example.com *.example.org"
    assert "script-src 'self'" in policy
    assert "connect-src 'self' ws://testserver" in policy

    for other in ("/", "/login/", "/widget.js"):
        assert client.get(other)["X-Frame-Options"] == "DENY", other


def test_the_chat_page_runs_its_script_from_a_file_only(client: Client, shop: Shop) -> None:
    html = client.get(chat_url(shop.tenant)).content.decode()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all(" src=" in tag for tag in scripts)
    assert re.search(r"<script\b[^>]*>\s*[^<\s]", html) is None, "no inline script"
    assert 'data-websocket="/ws/chat/' + shop.tenant.slug + '/"' in html
    assert "Test Dental" in html
    assert 'name="viewport"' in html


def test_a_bad_domain_stored_behind_the_forms_back_never_reaches_the_header(
    client: Client, shop: Shop
) -> None:
    allow("https://ok.example.com", "evil.example; script-src *", "'unsafe-inline'", "*")
    policy = client.get(chat_url(shop.tenant))["Content-Security-Policy"]
    assert CHAT_CSP.search(policy)[1] == "'self' https://ok.example.com"
    assert policy.count("script-src") == 1


def test_without_domains_only_this_site_may_frame_the_chat(client: Client, shop: Shop) -> None:
    policy = client.get(chat_url(shop.tenant))["Content-Security-Policy"]
    assert CHAT_CSP.search(policy)[1] == "'self'"


def test_a_plan_without_chat_shows_a_notice(
    client: Client, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = shop.tenant.plan
    monkeypatch.setitem(PLANS, plan, dataclasses.replace(PLANS[plan], features=frozenset()))
    response = client.get(chat_url(shop.tenant))
    assert response.status_code == 403
    assert b"does not offer chat" in response.content


def test_unknown_and_paused_businesses_have_no_chat_page(client: Client, shop: Shop) -> None:
    assert client.get("/b/no-such-business/chat/").status_code == 404
    Tenant.objects.filter(pk=shop.tenant.pk).update(status=Tenant.Status.SUSPENDED)
    assert client.get(chat_url(shop.tenant)).status_code == 403


# --- the widget script --------------------------------------------------------------------


def test_the_widget_script_is_served_as_cacheable_javascript(client: Client, db: None) -> None:
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert "public" in response["Cache-Control"]
    assert "max-age=3600" in response["Cache-Control"]
    body = response.content.decode()
    assert "data-business" in body
    assert "chat-launcher" in body
    assert "/chat/" in body
    again = client.get("/widget.js", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304
    assert client.post("/widget.js").status_code == 405


# --- frame sources ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "source"),
    [
        ("example.com", "example.com"),
        ("https://www.Example.com/", "https://www.example.com"),
        ("https://www.example.com/contact?x=1", "https://www.example.com"),
        ("*.example.org", "*.example.org"),
        ("http://localhost:8080", "http://localhost:8080"),
        (" https://shop.example.co.uk ", "https://shop.example.co.uk"),
    ],
)
def test_frame_sources_are_normalised(raw: str, source: str) -> None:
    assert frame_source_normalize(raw) == source


@pytest.mark.parametrize(
    "raw",
    ["*", "*.com", "'self'", "'unsafe-inline'", "example.com; script-src *", "ftp://example.com",
     "javascript:alert(1)", "exa mple.com", "https://example.com:99999", "data:", ""],
)
def test_anything_but_a_web_address_is_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        frame_source_normalize(raw)


def test_frame_ancestors_ignores_non_lists() -> None:
    assert frame_ancestors("https://example.com") == "frame-ancestors 'self'"  # type: ignore[arg-type]


# --- dashboard ----------------------------------------------------------------------------


def test_the_settings_form_takes_one_site_a_line(shop: Shop) -> None:
    form = ChatSettingsForm(
        data={"greeting": "Hello!", "allowed_frame_domains": "https://a.example.com\n\n"
              "b.example.com/page\nhttps://a.example.com"},
        instance=chat_settings_get(),
    )
    assert form.is_valid(), form.errors
    form.save()
    assert ChatSettings.objects.get().allowed_frame_domains == ["https://a.example.com",
                                                                "b.example.com"]
    bad = ChatSettingsForm(data={"greeting": "", "allowed_frame_domains": "example.com; x"},
                           instance=chat_settings_get())
    assert not bad.is_valid()
    assert "allowed_frame_domains" in bad.errors


def test_owners_read_transcripts_and_edit_chat_settings(client: Client, shop: Shop) -> None:
    conversation = conversation_start(channel="chat")
    conversation_turn(conversation=conversation, text="what services do you offer?")
    client.force_login(owner_of(shop.tenant))

    listing = client.get("/dashboard/agent/conversation/")
    assert listing.status_code == 200
    assert b"Chat" in listing.content
    detail = client.get(f"/dashboard/agent/conversation/{conversation.pk}/change/")
    assert detail.status_code == 200
    assert b"what services do you offer?" in detail.content
    assert b"Cleaning" in detail.content
    assert b'name="_save"' not in detail.content, "transcripts are read-only"
    assert client.get("/dashboard/agent/conversation/add/").status_code == 403

    settings_list = client.get("/dashboard/agent/chatsettings/")
    assert settings_list.status_code == 302
    change_url = settings_list["Location"]
    saved = client.post(change_url, {"greeting": "Welcome!",
                                     "allowed_frame_domains": "https://www.example.com"})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    assert chat_settings_get().allowed_frame_domains == ["https://www.example.com"]
    assert chat_settings_get().greeting == "Welcome!"


# --- commands -----------------------------------------------------------------------------


def test_the_chat_command_prints_the_greeting_then_one_reply_a_line(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("what services do you offer?\n\nbye\n"))
    out = io.StringIO()
    call_command("chat", shop.tenant.slug, stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Hi! I'm the booking assistant of Test Dental")
    assert "Cleaning" in lines[1]
    assert len(lines) == 3 and lines[2]
    assert Conversation.objects.get().channel == "chat"


def test_the_chat_settings_command_adds_and_removes_sites(shop: Shop) -> None:
    out = io.StringIO()
    call_command("chat_settings", shop.tenant.slug, "--allow-domain", "https://a.example.com",
                 "--allow-domain", "http://localhost:8123", stdout=out)
    assert json.loads(out.getvalue())["allowed_frame_domains"] == [
        "https://a.example.com", "http://localhost:8123"]
    out = io.StringIO()
    call_command("chat_settings", shop.tenant.slug, "--disallow-domain", "https://a.example.com",
                 "--greeting", "Hello there", stdout=out)
    assert json.loads(out.getvalue()) == {"allowed_frame_domains": ["http://localhost:8123"],
                                          "greeting": "Hello there"}
