"""The three plans: price, monthly appointment limit and features."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

CHAT = "chat"
WAITLIST = "waitlist"
PHONE = "phone"
ALL_FEATURES = (CHAT, WAITLIST, PHONE)


@dataclass(frozen=True)
class PlanSpec:
    code: str
    name: str
    monthly_price: Decimal
    appointment_limit: int | None  # per calendar month in the business's zone; None = unlimited
    features: frozenset[str]
    price_setting: str  # settings name holding the Stripe price id

    @property
    def stripe_price_id(self) -> str:
        return str(getattr(settings, self.price_setting, ""))


PLANS: dict[str, PlanSpec] = {
    "starter": PlanSpec("starter", "Starter", Decimal("49.99"), 100,
                        frozenset({CHAT}), "STRIPE_PRICE_STARTER"),
    "standard": PlanSpec("standard", "Standard", Decimal("99.99"), 500,
                         frozenset({CHAT, WAITLIST}), "STRIPE_PRICE_STANDARD"),
    "premium": PlanSpec("premium", "Premium", Decimal("150.99"), None,
                        frozenset({CHAT, WAITLIST, PHONE}), "STRIPE_PRICE_PREMIUM"),
}


def plan_for(code: str) -> PlanSpec:
    return PLANS[code]
