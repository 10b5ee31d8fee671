"""Rate limits: 429 with Retry-After on every public door, keyed per address, account,
caller number, connection and business; normal traffic is never limited."""

# Fixtures imported from tests.booking.conftest are parameters of the same name.
# ruff: noqa: F811

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client, RequestFactory, override_settings
from django_ratelimit.checks import check_caches

from agent import ratelimit as chat_ratelimit
from smartscheduler import ratelimits
from smartscheduler.asgi import application
from tenants.services import owner_get_or_create
from tenants.views import LOCKOUT_MESSAGE
from tests.booking.conftest import (  # noqa: F401  (fixtures)
    MakeShop,
    Shop,
    base_setup,
    frozen,
    make_shop,
)
from tests.voice.conftest import ADA, BASE, BUSINESS_NUMBER, JANE, TOKEN, sign

pytestmark = pytest.mark.django_db

PASSWORD = "plum-orchard-Lantern-42"
TIMEOUT = 10


@pytest.fixture(autouse=True)
def fast_hashes(settings: Any) -> None:
    # A lockout test makes a hundred failed logins; Argon2 would spend seconds on them.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def limits(settings: Any) -> Iterator[dict[str, str]]:
    """Set some limits low for one test: ``limits["signup_ip"] = "2/h"``."""
    changed = dict(settings.RATELIMITS)
    settings.RATELIMITS = changed
    yield changed


@pytest.fixture
def owner(db: None) -> User:
    user, _ = owner_get_or_create(email="dana@example.com", password=PASSWORD)
    return user


@pytest.fixture
def biz(make_shop: MakeShop, frozen: time_machine.Traveller) -> Shop:
    return make_shop()


def from_address(address: str) -> Client:
    return Client(REMOTE_ADDR=address)


def assert_html_429(response: Any) -> None:
    assert response.status_code == 429
    assert response["Content-Type"].startswith("text/html")
    assert int(response["Retry-After"]) >= 1
    assert "Please slow down" in response.content.decode()


def assert_json_429(response: Any) -> dict[str, Any]:
    assert response.status_code == 429
    assert response["Content-Type"].startswith("application/json")
    assert int(response["Retry-After"]) >= 1
    body: dict[str, Any] = response.json()
    assert body["error"] == "rate_limited"
    assert body["detail"]
    return body


# --- the client's address -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "198.51.100.1, 203.0.113.9", "10.0.0.5"),  # no proxy trusted: the header is noise
        (1, "198.51.100.1, 203.0.113.9", "203.0.113.9"),  # what our load balancer saw
        (2, "198.51.100.1, 203.0.113.9", "198.51.100.1"),
        (3, "198.51.100.1, 203.0.113.9", "10.0.0.5"),  # fewer hops than proxies
        (1, "not-an-address", "10.0.0.5"),
        (1, "", "10.0.0.5"),
    ],
)
def test_client_address_trusts_forwarded_for_only_as_far_as_configured(
    settings: Any, proxies: int, forwarded: str, expected: str
) -> None:
    settings.RATELIMIT_TRUSTED_PROXIES = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=forwarded)
    assert ratelimits.client_ip(request) == expected


def test_a_spoofed_forwarded_for_does_not_escape_the_limit(limits: dict[str, str]) -> None:
    limits["signup_ip"] = "2/h"
    client = from_address("198.51.100.20")
    statuses = [
        client.post("/signup/", {}, HTTP_X_FORWARDED_FOR=f"192.0.2.{i}").status_code
        for i in range(3)
    ]
    assert statuses == [200, 200, 429]


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_allowance(
    settings: Any, limits: dict[str, str]
) -> None:
    settings.RATELIMIT_TRUSTED_PROXIES = 1
    limits["signup_ip"] = "1/h"
    proxy = from_address("10.0.0.2")
    assert proxy.post("/signup/", {}, HTTP_X_FORWARDED_FOR="192.0.2.1").status_code == 200
    assert proxy.post("/signup/", {}, HTTP_X_FORWARDED_FOR="192.0.2.2").status_code == 200
    assert_html_429(proxy.post("/signup/", {}, HTTP_X_FORWARDED_FOR="192.0.2.1"))


# --- accounts -----------------------------------------------------------------------------


def login(client: Client, email: str, password: str) -> Any:
    return client.post("/login/", {"username": email, "password": password})


def test_signup_is_limited_per_address_until_the_window_passes(limits: dict[str, str]) -> None:
    limits["signup_ip"] = "2/h"
    client = from_address("198.51.100.30")
    with time_machine.travel("2026-03-02 12:00Z", tick=False) as clock:
        assert [client.post("/signup/", {}).status_code for _ in range(2)] == [200, 200]
        limited = client.post("/signup/", {})
        assert_html_429(limited)
        assert int(limited["Retry-After"]) <= 3600
        # Reading the form is not signing up.
        assert client.get("/signup/").status_code == 200
        assert from_address("198.51.100.31").post("/signup/", {}).status_code == 200
        clock.shift(3601)
        assert client.post("/signup/", {}).status_code == 200


def test_login_attempts_are_limited_per_address(owner: User, limits: dict[str, str]) -> None:
    limits["login_ip"] = "2/m"
    client = from_address("198.51.100.40")
    assert login(client, "dana@example.com", "wrong-1").status_code == 200
    assert login(client, "dana@example.com", "wrong-2").status_code == 200
    assert_html_429(login(client, "dana@example.com", PASSWORD))
    assert "_auth_user_id" not in client.session
    assert login(from_address("198.51.100.41"), "dana@example.com", PASSWORD).status_code == 302


def test_a_hundred_failed_logins_lock_the_account_from_any_address(owner: User) -> None:
    with time_machine.travel("2026-03-02 12:00Z", tick=False) as clock:
        for i in range(100):
            response = login(from_address(f"10.1.{i // 250}.{i % 250 + 1}"), "dana@example.com",
                             f"guess-{i}")
            assert response.status_code == 200, i
        # Even the right password, from an address never seen, waits out the lockout.
        locked = login(from_address("203.0.113.77"), "DANA@example.com", PASSWORD)
        assert locked.status_code == 429
        assert 1 <= int(locked["Retry-After"]) <= 3600
        assert "Too many failed attempts to log in to this account" in locked.content.decode()
        # Another account is not affected.
        owner_get_or_create(email="eve@example.com", password=PASSWORD)
        assert login(from_address("203.0.113.78"), "eve@example.com", PASSWORD).status_code == 302
        clock.shift(3601)
        assert login(from_address("203.0.113.77"), "dana@example.com", PASSWORD).status_code == 302


def test_the_lockout_reads_the_same_for_an_account_that_does_not_exist(
    owner: User, limits: dict[str, str]
) -> None:
    limits["login_failures_account"] = "2/h"
    answers = {}
    for email in ("dana@example.com", "nobody@example.com"):
        for i in range(2):
            assert login(from_address(f"10.2.0.{i + 1}"), email, "wrong").status_code == 200
        answers[email] = login(from_address("10.2.0.9"), email, "wrong")
    real, unknown = answers["dana@example.com"], answers["nobody@example.com"]
    assert (real.status_code, unknown.status_code) == (429, 429)
    # Only the wait differs: each typed address has its own window (never its existence).
    pages = [re.sub(r"try again in [^.]+\.", "", r.content.decode()) for r in (real, unknown)]
    assert pages[0] == pages[1]
    assert LOCKOUT_MESSAGE in pages[0]


def test_successful_logins_do_not_use_up_the_allowance(
    owner: User, limits: dict[str, str]
) -> None:
    limits["login_failures_account"] = "2/h"
    client = from_address("10.3.0.1")
    for _ in range(4):
        assert login(client, "dana@example.com", PASSWORD).status_code == 302
        client.post("/logout/")
    assert login(client, "dana@example.com", "wrong").status_code == 200
    assert login(client, "dana@example.com", PASSWORD).status_code == 302


def test_password_resets_are_limited_per_email_and_per_address(
    owner: User, limits: dict[str, str]
) -> None:
    limits["password_reset_account"] = "2/h"
    limits["password_reset_ip"] = "4/h"
    for i in range(2):
        response = from_address(f"10.4.0.{i + 1}").post(
            "/password-reset/", {"email": "dana@example.com"})
        assert response.status_code == 302
    assert_html_429(from_address("10.4.0.3").post("/password-reset/",
                                                  {"email": "Dana@Example.com"}))
    assert len(mail.outbox) == 2
    # One address asking for many accounts hits its own limit.
    client = from_address("10.4.1.1")
    statuses = [client.post("/password-reset/", {"email": f"u{i}@example.com"}).status_code
                for i in range(5)]
    assert statuses == [302, 302, 302, 302, 429]


# --- public API and booking page ----------------------------------------------------------


def api_book(client: Client, shop: Shop, body: str = "{}") -> Any:
    return client.post(f"/api/b/{shop.tenant.slug}/appointments", body,
                       content_type="application/json")


def test_api_bookings_are_limited_per_address_and_business(
    biz: Shop, make_shop: MakeShop, frozen: time_machine.Traveller, limits: dict[str, str]
) -> None:
    limits["api_booking_ip"] = "2/m"
    client = from_address("198.51.100.50")
    assert [api_book(client, biz).status_code for _ in range(2)] == [422, 422]
    assert_json_429(api_book(client, biz))
    # Reading is a separate, larger allowance.
    assert client.get(f"/api/b/{biz.tenant.slug}/services").status_code == 200
    assert api_book(from_address("198.51.100.51"), biz).status_code == 422
    assert api_book(client, make_shop()).status_code == 422
    frozen.shift(61)
    assert api_book(client, biz).status_code == 422


def test_api_reads_are_limited_with_json_and_retry_after(
    biz: Shop, limits: dict[str, str]
) -> None:
    limits["api_ip"] = "3/m"
    client = from_address("198.51.100.60")
    url = f"/api/b/{biz.tenant.slug}/services"
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 200]
    body = assert_json_429(client.get(url))
    assert set(body) == {"error", "detail"}
    assert int(client.get(url)["Retry-After"]) <= 60


def test_the_booking_page_is_limited_per_address_and_business(
    biz: Shop, make_shop: MakeShop, frozen: time_machine.Traveller, limits: dict[str, str]
) -> None:
    limits["booking_page_ip"] = "2/m"
    client = from_address("198.51.100.70")
    page = f"/b/{biz.tenant.slug}/"
    assert [client.get(page).status_code for _ in range(2)] == [200, 200]
    assert_html_429(client.get(page))
    # A script asking for JSON gets JSON.
    assert_json_429(client.get(page, HTTP_ACCEPT="application/json"))
    other = make_shop()
    assert client.get(f"/b/{other.tenant.slug}/").status_code == 200
    frozen.shift(61)
    assert client.get(page).status_code == 200


def test_booking_page_forms_have_a_tighter_limit(
    biz: Shop, limits: dict[str, str]
) -> None:
    limits["booking_submit_ip"] = "1/m"
    client = from_address("198.51.100.80")
    url = f"/b/{biz.tenant.slug}/book/"
    assert client.post(url, {}).status_code != 429
    assert_html_429(client.post(url, {}))
    assert client.get(f"/b/{biz.tenant.slug}/").status_code == 200


def test_normal_traffic_is_not_limited(biz: Shop, owner: User) -> None:
    client = from_address("198.51.100.90")
    slug = biz.tenant.slug
    for _ in range(30):
        assert client.get(f"/b/{slug}/").status_code == 200
        assert client.get(f"/api/b/{slug}/services").status_code == 200
    for _ in range(20):
        assert api_book(client, biz).status_code == 422
    for _ in range(5):
        assert login(client, "dana@example.com", "typo").status_code == 200
    assert login(client, "dana@example.com", PASSWORD).status_code == 302


def test_limits_can_be_switched_off(settings: Any, limits: dict[str, str]) -> None:
    settings.RATELIMIT_ENABLE = False
    limits["signup_ip"] = "1/h"
    client = from_address("198.51.100.95")
    assert {client.post("/signup/", {}).status_code for _ in range(3)} == {200}
    assert all(chat_ratelimit.hit("k", limit=1) for _ in range(3))


# --- Twilio webhooks ----------------------------------------------------------------------


@pytest.fixture
def twilio(settings: Any) -> None:
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.PUBLIC_BASE_URL = BASE
    settings.SMS_BACKEND = "booking.sms.LocmemBackend"
    settings.AGENT_PROVIDER = "offline"


def call(client: Client, slug: str, caller: str, sid: int, *, signed: bool = True) -> Any:
    path = f"/voice/{slug}/incoming"
    data = {"CallSid": f"CA{sid:032d}", "AccountSid": "AC" + "0" * 32, "From": caller,
            "To": BUSINESS_NUMBER, "CallStatus": "ringing", "Direction": "inbound"}
    signature = sign(path, data) if signed else "forged"
    return client.post(path, data, HTTP_X_TWILIO_SIGNATURE=signature)


def test_calls_are_limited_per_caller_number_after_the_signature_check(
    biz: Shop, twilio: None, frozen: time_machine.Traveller, limits: dict[str, str]
) -> None:
    limits["voice_number"] = "2/h"
    client = Client()
    slug = biz.tenant.slug
    # Forged requests are refused and do not use up the number's allowance.
    assert [call(client, slug, JANE, 90 + i, signed=False).status_code for i in range(3)] == [
        403, 403, 403]
    assert [call(client, slug, JANE, i).status_code for i in (1, 2)] == [200, 200]
    limited = call(client, slug, JANE, 3)
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 3600
    # Unsigned stays 403 even for a limited number.
    assert call(client, slug, JANE, 4, signed=False).status_code == 403
    assert call(client, slug, ADA, 5).status_code == 200
    frozen.shift(3601)
    assert call(client, slug, JANE, 6).status_code == 200


def test_text_messages_are_limited_per_sender(
    biz: Shop, twilio: None, limits: dict[str, str]
) -> None:
    limits["sms_number"] = "1/h"
    path = f"/voice/{biz.tenant.slug}/sms"

    def text(sender: str) -> Any:
        data = {"MessageSid": "SM" + "1" * 32, "AccountSid": "AC" + "0" * 32, "From": sender,
                "To": BUSINESS_NUMBER, "Body": "hello", "NumMedia": "0"}
        return Client().post(path, data, HTTP_X_TWILIO_SIGNATURE=sign(path, data))

    assert text(JANE).status_code == 200
    assert text(JANE).status_code == 429
    assert text(ADA).status_code == 200


# --- chat websocket -----------------------------------------------------------------------


def socket(slug: str, client: str = "203.0.113.7") -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, f"/ws/chat/{slug}/",
                                         headers=[(b"origin", b"http://testserver")])
    communicator.scope["client"] = (client, 50000)
    return communicator


async def frame_after(communicator: WebsocketCommunicator, text: str) -> dict[str, Any]:
    await communicator.send_json_to({"type": "message", "text": text})
    frame: dict[str, Any] = await communicator.receive_json_from(timeout=TIMEOUT)
    if frame["type"] == "typing":
        frame = await communicator.receive_json_from(timeout=TIMEOUT)
    return frame


@pytest.mark.django_db(transaction=True)
async def test_chat_messages_past_the_limit_get_a_rate_limited_frame(
    biz: Shop, frozen: time_machine.Traveller
) -> None:
    with override_settings(AGENT_CHAT_RATE_PER_CONNECTION=2, AGENT_CHAT_RATE_PER_IP=100):
        communicator = socket(biz.tenant.slug)
        ok, _ = await communicator.connect(timeout=TIMEOUT)
        assert ok
        assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "welcome"
        assert (await frame_after(communicator, "hi"))["type"] == "reply"
        assert (await frame_after(communicator, "hi"))["type"] == "reply"
        limited = await frame_after(communicator, "hi")
        assert (limited["type"], limited["code"]) == ("error", "rate_limited")
        frozen.shift(61)
        assert (await frame_after(communicator, "hi"))["type"] == "reply"
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_chat_behind_a_load_balancer_counts_each_customer_not_the_balancer(
    biz: Shop, frozen: time_machine.Traveller
) -> None:
    balancer = "10.0.0.5"

    def behind_balancer(forwarded_for: str) -> WebsocketCommunicator:
        communicator = WebsocketCommunicator(
            application, f"/ws/chat/{biz.tenant.slug}/",
            headers=[(b"origin", b"http://testserver"),
                     (b"x-forwarded-for", forwarded_for.encode())],
        )
        communicator.scope["client"] = (balancer, 50000)
        return communicator

    async def replies(communicator: WebsocketCommunicator, count: int) -> list[str]:
        ok, _ = await communicator.connect(timeout=TIMEOUT)
        assert ok
        await communicator.receive_json_from(timeout=TIMEOUT)  # welcome
        kinds = [(await frame_after(communicator, "hi")).get("code", "reply")
                 for _ in range(count)]
        await communicator.disconnect()
        return kinds

    with override_settings(RATELIMIT_TRUSTED_PROXIES=1, AGENT_CHAT_RATE_PER_IP=2,
                           AGENT_CHAT_RATE_PER_CONNECTION=100):
        assert await replies(behind_balancer("198.51.100.1"), 2) == ["reply", "reply"]
        assert await replies(behind_balancer("198.51.100.2"), 2) == ["reply", "reply"]
        # A customer who writes their own X-Forwarded-For entry is still counted
        # by the address the balancer appended.
        assert await replies(behind_balancer("192.0.2.99, 198.51.100.1"), 1) == [
            "rate_limited"]


def test_chat_counters_are_django_ratelimit_counters_in_the_shared_cache(
    frozen: time_machine.Traveller,
) -> None:
    assert [chat_ratelimit.hit("t1:message:ip:a", limit=2) for _ in range(3)] == [
        True, True, False]
    # The same counter, seen through django-ratelimit's own API.
    seen = ratelimits.usage(None, chat_ratelimit.GROUP, "t1:message:ip:a", increment=False,
                            rate=(2, 60))
    assert (seen.count, seen.limited) == (3, True)
    assert chat_ratelimit.hit("t2:message:ip:a", limit=2)
    frozen.shift(61)
    assert chat_ratelimit.hit("t1:message:ip:a", limit=2)


# --- configuration ------------------------------------------------------------------------


def test_only_the_local_memory_complaints_are_silenced(settings: Any) -> None:
    found = {problem.id for problem in check_caches(None)}
    assert found == {"django_ratelimit.E003", "django_ratelimit.W001"}
    assert found <= set(settings.SILENCED_SYSTEM_CHECKS)


def test_a_malformed_rate_is_refused_at_startup() -> None:
    env = {**os.environ, "DEBUG": "true", "RATELIMIT_SIGNUP_IP": "lots"}
    result = subprocess.run(
        [sys.executable, "-c", "import smartscheduler.settings"],
        env=env, capture_output=True, text=True, check=False,
    )
    assert result.returncode != 0
    assert "RATELIMIT_SIGNUP_IP must look like" in result.stderr


def test_an_unreachable_cache_lets_requests_through(settings: Any,
                                                    limits: dict[str, str]) -> None:
    # Turning every visitor away because Redis is down would be worse than not counting.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}
    limits["signup_ip"] = "1/h"
    client = from_address("198.51.100.99")
    assert [client.post("/signup/", {}).status_code for _ in range(2)] == [200, 200]
    assert chat_ratelimit.hit("k", limit=1)
