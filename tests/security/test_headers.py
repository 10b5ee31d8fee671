"""Security headers and cookies, graded the way Mozilla's HTTP Observatory grades a site.

``observatory_score`` follows the Observatory's published scoring (its v2
algorithm: CSP, cookies, CORS, redirection, Referrer-Policy, HSTS, SRI,
X-Content-Type-Options, X-Frame-Options, Cross-Origin-Resource-Policy): every
site starts at 100, each test adds its modifier, and bonuses count only when
the score without them is already 90 or more. A+ is 100 and up. It reads the
real responses of the pages a visitor or a scanner reaches first, served over
HTTPS (``secure=True``) with production security settings.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import string
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import django
import pytest
from django.conf import settings
from django.test import Client, override_settings

from tests.booking.conftest import MakeShop, Shop, frozen, make_shop  # noqa: F401
from tests.live_server import REPO

SCANNER_ORIGIN = "https://http-observatory.security.mozilla.org"
SIX_MONTHS = 15_768_000

# --- the scorer ---------------------------------------------------------------------------


@dataclass
class Response:
    """What the scanner saw: the HTTPS answer, and where plain HTTP sent it."""

    url: str
    status: int
    headers: dict[str, list[str]]  # lower-case name -> every value sent
    body: str
    set_cookies: list[str]  # raw Set-Cookie values, from every response of the scan
    http_locations: list[str] = field(default_factory=list)  # redirects of the http:// request

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


@dataclass
class Outcome:
    test: str
    result: str
    modifier: int


class CspInvalid(ValueError):
    pass


def parse_csp(values: list[str]) -> dict[str, set[str]]:
    """Directives of the policy; a repeated directive or an empty policy is invalid."""
    policies = [p.strip() for value in values for p in value.replace("\r", "").replace(
        "\n", "").split(",")]
    csp: dict[str, set[str]] = {}
    for index, policy in enumerate(policies):
        if len(policy) < len("img-src") - 1:
            raise CspInvalid(policy)
        seen: set[str] = set()
        for entry in policy.split(";"):
            parts = entry.split()
            if not parts:
                continue
            directive, sources = parts[0].lower(), [s.lower() for s in parts[1:]]
            if directive in seen and directive not in {"report-uri", "report-to"}:
                raise CspInvalid(f"duplicate {directive}")
            seen.add(directive)
            found = set(sources) or ({"'none'"} if directive.endswith("-src") else set())
            # A later policy can only narrow what an earlier one allowed.
            csp[directive] = found if index == 0 or directive not in csp else (
                csp[directive] & found or {"'none'"})
    return csp


BROAD = {"ftp:", "http:", "https:", "*", "http://*", "http://*.*", "https://*", "https://*.*"}
UNSAFE_INLINE = {"'unsafe-inline'", "data:"}
NONCE_OR_HASH = ("'sha256-", "'sha384-", "'sha512-", "'nonce-")


def csp_test(r: Response) -> tuple[str, dict[str, set[str]]]:
    values = r.headers.get("content-security-policy", [])
    if not values:
        if r.header("content-security-policy-report-only"):
            return "csp-not-implemented-but-reporting-enabled", {}
        return "csp-not-implemented", {}
    try:
        csp = parse_csp(values)
    except CspInvalid:
        return "csp-header-invalid", {}
    https = r.url.startswith("https:")
    default = csp.get("default-src")
    script = set(csp.get("script-src") or default or {"*"})
    style = set(csp.get("style-src") or default or {"*"})
    objects = csp.get("object-src") or default or {"*"}
    for sources in (script, style):
        if any(s.startswith(NONCE_OR_HASH) for s in sources):
            sources.discard("'unsafe-inline'")
    if any(s.startswith(NONCE_OR_HASH) for s in script) and "'strict-dynamic'" in script:
        script = {s for s in script if s not in {"'self'", "'unsafe-inline'"}
                  and not any(s.startswith(b) for b in BROAD)}
    elif "'strict-dynamic'" in script:
        return "csp-header-invalid", csp
    passive = {"img-src", "media-src"}
    active = [s for d, v in csp.items() if d not in passive and d != "script-src" for s in v]
    active += list(script)
    passive_sources = [s for d in passive for s in (csp.get(d) or default or set())]
    insecure = ("http:", "ftp:")
    if script & (BROAD | UNSAFE_INLINE) or objects & BROAD:
        return "csp-implemented-with-unsafe-inline", csp
    if https and any(s.startswith(insecure) for s in active):
        return "csp-implemented-with-insecure-scheme", csp
    if "'unsafe-eval'" in script | style:
        return "csp-implemented-with-unsafe-eval", csp
    if https and any(s.startswith(insecure) for s in passive_sources):
        return "csp-implemented-with-insecure-scheme-in-passive-content-only", csp
    if style & (BROAD | UNSAFE_INLINE):
        return "csp-implemented-with-unsafe-inline-in-style-src-only", csp
    if default == {"'none'"}:
        return "csp-implemented-with-no-unsafe-default-src-none", csp
    return "csp-implemented-with-no-unsafe", csp


def hsts_max_age(r: Response) -> int | None:
    """max-age of a valid Strict-Transport-Security header sent over HTTPS, else None."""
    value = r.header("strict-transport-security")
    if not value or not r.url.startswith("https:"):
        return None
    match = re.search(r"(?:^|;)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:;|$)", value, re.I)
    return int(match[1]) if match else None


def hsts_test(r: Response) -> str:
    if not r.url.startswith("https:"):
        return "hsts-not-implemented-no-https"
    if r.header("strict-transport-security") is None:
        return "hsts-not-implemented"
    max_age = hsts_max_age(r)
    if max_age is None:
        return "hsts-header-invalid"
    # Being on the browsers' preload list (+5) is a property of the domain, not
    # of the response: never assumed here.
    if max_age < SIX_MONTHS:
        return "hsts-implemented-max-age-less-than-six-months"
    return "hsts-implemented-max-age-at-least-six-months"


def cookie_attributes(raw: str) -> tuple[str, dict[str, str]]:
    name = raw.split("=", 1)[0].strip()
    attributes: dict[str, str] = {}
    for part in raw.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        attributes[key.strip().lower()] = value.strip()
    return name, attributes


COOKIE_BADNESS = [
    "cookies-without-secure-flag-but-protected-by-hsts",
    "cookies-without-secure-flag",
    "cookies-session-without-secure-flag-but-protected-by-hsts",
    "cookies-samesite-flag-invalid",
    "cookies-anticsrf-without-samesite-flag",
    "cookies-session-without-httponly-flag",
    "cookies-session-without-secure-flag",
]


def cookies_test(r: Response) -> str:
    if not r.set_cookies:
        return "cookies-not-found"
    hsts = hsts_test(r).endswith("at-least-six-months")
    worst: str | None = None
    missing_samesite = False

    def worse(result: str) -> None:
        nonlocal worst
        if worst is None or COOKIE_BADNESS.index(result) > COOKIE_BADNESS.index(worst):
            worst = result

    for raw in r.set_cookies:
        name, attrs = cookie_attributes(raw)
        lowered = name.lower()
        session = "login" in lowered or "sess" in lowered
        anticsrf = "csrf" in lowered
        secure = "secure" in attrs and r.url.startswith("https:")
        samesite = attrs.get("samesite")
        if samesite is not None and samesite.lower() not in {"lax", "strict", "none"}:
            worse("cookies-samesite-flag-invalid")
        if not secure and samesite is not None and samesite.lower() == "none":
            worse("cookies-samesite-flag-invalid")
        if not secure:
            worse("cookies-without-secure-flag-but-protected-by-hsts" if hsts
                  else "cookies-without-secure-flag")
        if anticsrf and samesite is None:
            worse("cookies-anticsrf-without-samesite-flag")
        if session and not secure:
            worse("cookies-session-without-secure-flag-but-protected-by-hsts" if hsts
                  else "cookies-session-without-secure-flag")
        if session and "httponly" not in attrs:
            worse("cookies-session-without-httponly-flag")
        missing_samesite = missing_samesite or samesite is None
    if worst:
        return worst
    if missing_samesite:
        return "cookies-secure-with-httponly-sessions"
    return "cookies-secure-with-httponly-sessions-and-samesite"


def cors_test(r: Response) -> str:
    allow_origin = r.header("access-control-allow-origin")
    if allow_origin is None:
        return "cross-origin-resource-sharing-not-implemented"
    credentials = (r.header("access-control-allow-credentials") or "").lower() == "true"
    if allow_origin.strip() == "*":
        return "cross-origin-resource-sharing-implemented-with-public-access"
    if allow_origin.strip() == SCANNER_ORIGIN and credentials:
        return "cross-origin-resource-sharing-implemented-with-universal-access"
    return "cross-origin-resource-sharing-implemented-with-restricted-access"


def redirection_test(r: Response) -> str:
    if not r.http_locations:
        return "redirection-missing"
    host = urlsplit(r.url).hostname
    first = urlsplit(r.http_locations[0])
    last = urlsplit(r.http_locations[-1])
    if last.scheme != "https":
        return "redirection-not-to-https"
    if first.scheme != "https":
        return "redirection-not-to-https-on-initial-redirection"
    if first.hostname != host:
        return "redirection-off-host-from-http"
    return "redirection-to-https"


def referrer_policy_test(r: Response) -> str:
    value = r.header("referrer-policy")
    if value is None:
        return "referrer-policy-not-implemented"
    known = {"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin",
             "origin", "origin-when-cross-origin", "unsafe-url", "no-referrer-when-downgrade"}
    # Browsers use the last policy they understand.
    policies = [p.strip().lower() for p in value.split(",") if p.strip().lower() in known]
    if not policies:
        return "referrer-policy-header-invalid"
    if policies[-1] in {"no-referrer", "same-origin", "strict-origin",
                        "strict-origin-when-cross-origin"}:
        return "referrer-policy-private"
    return "referrer-policy-unsafe"


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))


def sri_test(r: Response) -> str:
    mime = (r.header("content-type") or "").split(";")[0].strip().lower()
    if mime and mime not in {"text/html", "application/xhtml+xml"}:
        return "sri-not-implemented-response-not-html"
    parser = _Scripts()
    parser.feed(r.body)
    if not parser.scripts:
        return "sri-not-implemented-but-no-scripts-loaded"
    site = urlsplit(r.url).hostname or ""
    badness = [
        "sri-implemented-and-all-scripts-loaded-securely",
        "sri-implemented-and-external-scripts-loaded-securely",
        "sri-implemented-but-external-scripts-not-loaded-securely",
        "sri-not-implemented-but-external-scripts-loaded-securely",
        "sri-not-implemented-and-external-scripts-not-loaded-securely",
    ]
    worst: str | None = None
    foreign = False
    for script in parser.scripts:
        src = script.get("src")
        if not src:
            continue
        integrity = script.get("integrity")
        protocol_relative = src.startswith("//")
        absolute = re.match(r"^https?://", src) is not None
        relative = not protocol_relative and not absolute
        same_site = relative or (absolute and _site(urlsplit(src).hostname) == _site(site))
        secure_scheme = src.startswith("https://") or (relative and r.url.startswith("https:"))
        if relative or (same_site and not protocol_relative):
            if integrity and secure_scheme and worst is None:
                worst = badness[0]
            continue
        foreign = True
        if integrity and not secure_scheme:
            result = badness[2]
        elif not integrity and secure_scheme:
            result = badness[3]
        elif not integrity:
            result = badness[4]
        else:
            continue
        if worst is None or badness.index(result) > badness.index(worst):
            worst = result
    if worst:
        return worst
    if foreign:
        return "sri-implemented-and-external-scripts-loaded-securely"
    return "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"


def _site(host: str | None) -> str:
    return ".".join((host or "").split(".")[-2:])


def x_content_type_options_test(r: Response) -> str:
    value = r.header("x-content-type-options")
    if value is None:
        return "x-content-type-options-not-implemented"
    if value.strip().lower() == "nosniff":
        return "x-content-type-options-nosniff"
    return "x-content-type-options-header-invalid"


def x_frame_options_test(r: Response, csp: dict[str, set[str]]) -> str:
    if "frame-ancestors" in csp:
        return "x-frame-options-implemented-via-csp"
    value = r.header("x-frame-options")
    if value is None:
        return "x-frame-options-not-implemented"
    value = value.strip().lower()
    if value in {"deny", "sameorigin"}:
        return "x-frame-options-sameorigin-or-deny"
    if value.startswith("allow-from"):
        return "x-frame-options-allow-from-origin"
    return "x-frame-options-header-invalid"


def corp_test(r: Response) -> str:
    value = r.header("cross-origin-resource-policy")
    if value is None:
        return "cross-origin-resource-policy-not-implemented"
    return {
        "same-site": "cross-origin-resource-policy-implemented-with-same-site",
        "same-origin": "cross-origin-resource-policy-implemented-with-same-origin",
        "cross-origin": "cross-origin-resource-policy-implemented-with-cross-origin",
    }.get(value.strip().lower(), "cross-origin-resource-policy-header-invalid")


MODIFIERS = {
    "csp-implemented-with-no-unsafe-default-src-none": 10,
    "csp-implemented-with-no-unsafe": 5,
    "csp-implemented-with-unsafe-inline-in-style-src-only": 0,
    "csp-implemented-with-insecure-scheme-in-passive-content-only": -10,
    "csp-implemented-with-unsafe-eval": -10,
    "csp-implemented-with-unsafe-inline": -20,
    "csp-implemented-with-insecure-scheme": -20,
    "csp-header-invalid": -25,
    "csp-not-implemented": -25,
    "csp-not-implemented-but-reporting-enabled": -25,
    "cookies-secure-with-httponly-sessions-and-samesite": 5,
    "cookies-secure-with-httponly-sessions": 0,
    "cookies-not-found": 0,
    "cookies-without-secure-flag-but-protected-by-hsts": -5,
    "cookies-session-without-secure-flag-but-protected-by-hsts": -10,
    "cookies-without-secure-flag": -20,
    "cookies-samesite-flag-invalid": -20,
    "cookies-anticsrf-without-samesite-flag": -20,
    "cookies-session-without-httponly-flag": -30,
    "cookies-session-without-secure-flag": -40,
    "cross-origin-resource-sharing-not-implemented": 0,
    "cross-origin-resource-sharing-implemented-with-public-access": 0,
    "cross-origin-resource-sharing-implemented-with-restricted-access": 0,
    "cross-origin-resource-sharing-implemented-with-universal-access": -50,
    "redirection-to-https": 0,
    "redirection-off-host-from-http": -5,
    "redirection-not-to-https-on-initial-redirection": -10,
    "redirection-not-to-https": -20,
    "redirection-missing": -20,
    "referrer-policy-private": 5,
    "referrer-policy-not-implemented": 0,
    "referrer-policy-unsafe": -5,
    "referrer-policy-header-invalid": -5,
    "hsts-implemented-max-age-at-least-six-months": 0,
    "hsts-implemented-max-age-less-than-six-months": -10,
    "hsts-not-implemented": -20,
    "hsts-header-invalid": -20,
    "hsts-not-implemented-no-https": -20,
    "sri-implemented-and-all-scripts-loaded-securely": 5,
    "sri-implemented-and-external-scripts-loaded-securely": 5,
    "sri-not-implemented-response-not-html": 0,
    "sri-not-implemented-but-no-scripts-loaded": 0,
    "sri-not-implemented-but-all-scripts-loaded-from-secure-origin": 0,
    "sri-not-implemented-but-external-scripts-loaded-securely": -5,
    "sri-implemented-but-external-scripts-not-loaded-securely": -20,
    "sri-not-implemented-and-external-scripts-not-loaded-securely": -50,
    "x-content-type-options-nosniff": 0,
    "x-content-type-options-not-implemented": -5,
    "x-content-type-options-header-invalid": -5,
    "x-frame-options-implemented-via-csp": 5,
    "x-frame-options-sameorigin-or-deny": 0,
    "x-frame-options-allow-from-origin": 0,
    "x-frame-options-not-implemented": -20,
    "x-frame-options-header-invalid": -20,
    "cross-origin-resource-policy-implemented-with-same-origin": 10,
    "cross-origin-resource-policy-implemented-with-same-site": 10,
    "cross-origin-resource-policy-implemented-with-cross-origin": 0,
    "cross-origin-resource-policy-not-implemented": 0,
    "cross-origin-resource-policy-header-invalid": -5,
}
MINIMUM_SCORE_FOR_EXTRA_CREDIT = 90


@dataclass
class Grade:
    score: int
    grade: str
    outcomes: list[Outcome]

    def explain(self) -> str:
        return f"{self.score} ({self.grade}): " + ", ".join(
            f"{o.result} {o.modifier:+d}" for o in self.outcomes if o.modifier)


def letter(score: int) -> str:
    for floor, grade in [(100, "A+"), (90, "A"), (85, "A-"), (80, "B+"), (70, "B"), (65, "B-"),
                         (60, "C+"), (50, "C"), (45, "C-"), (40, "D+"), (30, "D"), (25, "D-")]:
        if score >= floor:
            return grade
    return "F"


def observatory_score(r: Response) -> Grade:
    csp_result, csp = csp_test(r)
    results = {
        "content-security-policy": csp_result,
        "cookies": cookies_test(r),
        "cross-origin-resource-sharing": cors_test(r),
        "redirection": redirection_test(r),
        "referrer-policy": referrer_policy_test(r),
        "strict-transport-security": hsts_test(r),
        "subresource-integrity": sri_test(r),
        "x-content-type-options": x_content_type_options_test(r),
        "x-frame-options": x_frame_options_test(r, csp),
        "cross-origin-resource-policy": corp_test(r),
    }
    outcomes = [Outcome(test, result, MODIFIERS[result]) for test, result in results.items()]
    with_bonus = 100 + sum(o.modifier for o in outcomes)
    without_bonus = 100 + sum(o.modifier for o in outcomes if o.modifier < 0)
    score = max(with_bonus if without_bonus >= MINIMUM_SCORE_FOR_EXTRA_CREDIT else without_bonus,
                0)
    return Grade(score, letter(score), outcomes)


# --- scanning this site ---------------------------------------------------------------------


def headers_of(response: Any) -> dict[str, list[str]]:
    headers = {name.lower(): [value] for name, value in response.headers.items()}
    headers.pop("set-cookie", None)
    return headers


def set_cookies_of(response: Any) -> list[str]:
    return [morsel.OutputString() for morsel in response.cookies.values()]


def scan(client: Client, path: str) -> Response:
    """GET ``path`` over HTTPS as the scanner does, and over HTTP to see the redirect."""
    response = client.get(path, secure=True, headers={"Origin": SCANNER_ORIGIN})
    assert response.status_code == 200, (path, response.status_code)
    plain = client.get(path, secure=False)
    locations = [plain["Location"]] if plain.status_code in {301, 302, 307, 308} else []
    return Response(
        url=f"https://testserver{path}",
        status=response.status_code,
        headers=headers_of(response),
        body=response.content.decode(errors="replace"),
        set_cookies=set_cookies_of(response) + set_cookies_of(plain),
        http_locations=locations,
    )


@pytest.fixture
def production() -> Iterator[Client]:
    """A client of the site with production's HTTPS redirect (the tests turn it off)."""
    with override_settings(SECURE_SSL_REDIRECT=True):
        yield Client()


@pytest.fixture
def biz(make_shop: MakeShop, frozen: Any) -> Shop:  # noqa: F811
    return make_shop()


def page_paths(shop: Shop) -> dict[str, str]:
    slug = shop.tenant.slug
    return {
        "home": "/",
        "login": "/login/",
        "booking page": f"/b/{slug}/",
        "chat page": f"/b/{slug}/chat/",
        "API": f"/api/b/{slug}/services",
    }


@pytest.mark.parametrize("page", ["home", "login", "booking page", "chat page", "API"])
def test_each_first_page_grades_a_plus(production: Client, biz: Shop, page: str) -> None:
    if page == "chat page":
        from agent.engine import chat_settings_get
        from tenants.context import tenant_context

        with tenant_context(biz.tenant):
            row = chat_settings_get()
            row.allowed_frame_domains = ["https://www.example.com"]
            row.save()
    result = scan(production, page_paths(biz)[page])
    grade = observatory_score(result)
    assert grade.grade == "A+", grade.explain()
    assert grade.score >= 100
    # Not only the total: no test may cost points.
    assert [o for o in grade.outcomes if o.modifier < 0] == [], grade.explain()


def test_logging_in_sets_only_secure_httponly_samesite_cookies(
    production: Client, biz: Shop
) -> None:
    production.get("/login/", secure=True)
    response = production.post(
        "/login/", {"username": biz.tenant.memberships.get().user.email,
                    "password": "correct-horse-battery-9"}, secure=True)
    assert response.status_code == 302
    cookies = set_cookies_of(response)
    assert any(c.startswith("sessionid=") for c in cookies)
    for raw in cookies:
        _, attrs = cookie_attributes(raw)
        assert "secure" in attrs and attrs.get("samesite") == "Lax", raw
        assert "httponly" in attrs, raw
    scanned = Response(url="https://testserver/login/", status=302,
                       headers=headers_of(response), body="", set_cookies=cookies)
    assert cookies_test(scanned) == "cookies-secure-with-httponly-sessions-and-samesite"


def test_the_scorer_fails_a_site_without_protections() -> None:
    bare = Response(url="https://example.com/", status=200,
                    headers={"content-type": ["text/html"]},
                    body='<script src="http://cdn.example.net/x.js"></script>',
                    set_cookies=["sessionid=abc; Path=/"])
    grade = observatory_score(bare)
    assert grade.grade == "F", grade.explain()
    results = {o.result for o in grade.outcomes}
    assert {"csp-not-implemented", "cookies-session-without-secure-flag",
            "redirection-missing", "hsts-not-implemented",
            "sri-not-implemented-and-external-scripts-not-loaded-securely",
            "x-frame-options-not-implemented"} <= results


@pytest.mark.parametrize(("policy", "expected"), [
    ("default-src 'none'; script-src 'self'", "csp-implemented-with-no-unsafe-default-src-none"),
    ("default-src 'self'", "csp-implemented-with-no-unsafe"),
    ("default-src 'self'; script-src 'self' 'unsafe-inline'", "csp-implemented-with-unsafe-inline"),
    ("default-src 'self'; script-src 'self' 'nonce-abc' 'unsafe-inline'",
     "csp-implemented-with-no-unsafe"),
    ("default-src 'self'; style-src 'self' 'unsafe-inline'",
     "csp-implemented-with-unsafe-inline-in-style-src-only"),
    ("default-src 'self'; script-src 'self' 'unsafe-eval'", "csp-implemented-with-unsafe-eval"),
    ("default-src 'self'; script-src http://cdn.example.com",
     "csp-implemented-with-insecure-scheme"),
    ("default-src 'self'; default-src 'none'", "csp-header-invalid"),
])
def test_the_scorer_grades_policies_like_the_observatory(policy: str, expected: str) -> None:
    result = Response(url="https://example.com/", status=200,
                      headers={"content-security-policy": [policy]}, body="", set_cookies=[])
    assert csp_test(result)[0] == expected


# --- the policy itself ----------------------------------------------------------------------


def test_the_chat_page_sends_one_policy_with_its_own_additions(client: Client, biz: Shop) -> None:
    response = client.get(f"/b/{biz.tenant.slug}/chat/", secure=True)
    assert response.status_code == 200
    policies = [v for k, v in response.headers.items() if k.lower() == "content-security-policy"]
    assert len(policies) == 1 and "," not in policies[0]
    csp = parse_csp(policies)
    assert csp["default-src"] == {"'none'"}
    assert csp["connect-src"] == {"'self'", "wss://testserver"}
    assert csp["frame-ancestors"] == {"'self'"}
    assert response["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert "X-Frame-Options" not in response
    # Every other page may not be framed at all.
    home = client.get("/", secure=True)
    assert parse_csp([home["Content-Security-Policy"]])["frame-ancestors"] == {"'none'"}
    assert home["X-Frame-Options"] == "DENY"
    assert home["Cross-Origin-Resource-Policy"] == "same-origin"


def test_hsts_covers_two_years_and_subdomains_over_https_only(client: Client, db: None) -> None:
    secure = client.get("/", secure=True)
    directives = [d.strip() for d in secure["Strict-Transport-Security"].split(";")]
    assert "max-age=63072000" in directives and "includeSubDomains" in directives
    assert secure["Cross-Origin-Opener-Policy"] == "same-origin"
    assert secure["Referrer-Policy"] == "strict-origin-when-cross-origin"
    # Browsers ignore HSTS over plain HTTP; it is only sent where it means something.
    assert "Strict-Transport-Security" not in client.get("/", secure=False)


def test_the_widget_script_may_be_loaded_by_other_sites(client: Client, db: None) -> None:
    response = client.get("/widget.js", secure=True)
    assert response.status_code == 200
    assert response["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_no_policy_allows_inline_or_eval_scripts() -> None:
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    for directive in ("script-src", "default-src", "style-src"):
        assert not {"'unsafe-inline'", "'unsafe-eval'"} & set(directives[directive]), directive


def test_the_admin_style_hash_matches_djangos_change_list_template() -> None:
    # Django's change list inlines one <style> block; the policy allows exactly it.
    template = Path(django.__file__).parent / "contrib/admin/templates/admin/change_list.html"
    blocks = re.findall(r"<style>(.*?)</style>", template.read_text(), re.S)
    assert len(blocks) == 1
    digest = base64.b64encode(hashlib.sha256(blocks[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" == settings.DJANGO_ADMIN_CHANGELIST_STYLE_HASH


TEMPLATE_DIRS = [REPO / "templates", *sorted(REPO.glob("*/templates"))]
INLINE = [
    (re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.I), "inline script"),
    (re.compile(r"<style\b", re.I), "inline style block"),
    (re.compile(r"\sstyle\s*=", re.I), "style attribute"),
    (re.compile(r"\son[a-z]+\s*=\s*[\"']", re.I), "event handler attribute"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def templates() -> list[Path]:
    return [p for d in TEMPLATE_DIRS if d.is_dir() for p in sorted(d.rglob("*.html"))]


def test_templates_carry_no_inline_script_style_or_handlers() -> None:
    found = [f"{p.relative_to(REPO)}: {what}" for p in templates()
             for pattern, what in INLINE if pattern.search(p.read_text())]
    assert found == []


def test_every_post_form_carries_a_csrf_token() -> None:
    missing = []
    for path in templates():
        html = path.read_text()
        for form in re.finditer(r"<form\b[^>]*>(.*?)</form>", html, re.S | re.I):
            if re.search(r"method=[\"']?post", form[0], re.I) and "{% csrf_token %}" not in form[1]:
                missing.append(f"{path.relative_to(REPO)} at {form.start()}")
    assert missing == []


# --- production settings --------------------------------------------------------------------


def test_deploy_check_is_clean_with_production_settings() -> None:
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    with tempfile.TemporaryDirectory(prefix="ss-deploy-check-") as var_dir:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("DJANGO_", "DATABASE_", "TENANT_", "REDIS_", "SECURE_"))}
        env.update(
            DJANGO_SETTINGS_MODULE="smartscheduler.settings",
            DEBUG="false",
            DJANGO_SECRET_KEY="".join(secrets.choice(alphabet) for _ in range(60)),
            ALLOWED_HOSTS="scheduler.example.com",
            PUBLIC_BASE_URL="https://scheduler.example.com",
            VAR_DIR=var_dir,
            STATIC_ROOT=str(Path(var_dir) / "static"),
        )
        result = subprocess.run(
            [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
