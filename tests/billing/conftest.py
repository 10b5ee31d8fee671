from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from django.core.cache import cache
from django.test import Client

from billing import stripe_api
from tests.fakes.stripe_server import PRICES, FakeStripe

WEBHOOK_SECRET = "whsec_test_0123456789abcdef"


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def fake_stripe(settings: Any) -> Iterator[FakeStripe]:
    """Stripe billing switched on, talking to a fake Stripe on loopback."""
    with FakeStripe() as fake:
        settings.STRIPE_SECRET_KEY = "sk_test_FakeKey0123456789abcdefghij"
        settings.STRIPE_PUBLISHABLE_KEY = "pk_test_fake"
        settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
        settings.STRIPE_API_BASE = fake.api_base
        settings.STRIPE_PRICE_STARTER = PRICES["starter"][0]
        settings.STRIPE_PRICE_STANDARD = PRICES["standard"][0]
        settings.STRIPE_PRICE_PREMIUM = PRICES["premium"][0]
        settings.BILLING_STRIPE_TIMEOUT_SECONDS = 5.0
        stripe_api.configure()
        yield fake
    settings.STRIPE_API_BASE = ""
    stripe_api.configure()


def signed_headers(payload: str, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    return {
        "HTTP_STRIPE_SIGNATURE": stripe.WebhookSignature.generate_signature_header(
            payload, secret
        )
    }


def post_event(event: dict[str, Any], *, secret: str = WEBHOOK_SECRET) -> Any:
    payload = json.dumps(event)
    return Client().post(
        "/stripe/webhook/", payload, content_type="application/json",
        **signed_headers(payload, secret),
    )


# The booking tests' businesses (services, staff, hours) and frozen clock.
from tests.booking.conftest import (  # noqa: E402, F401
    NOW,
    MakeShop,
    Shop,
    frozen,
    local,
    make_shop,
)
