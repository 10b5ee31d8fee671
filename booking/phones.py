"""Phone numbers in one form (E.164), so a customer is found by phone whatever they typed."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import phonenumbers

from booking.errors import InvalidInput


@lru_cache(maxsize=1)
def _zone_countries() -> dict[str, str]:
    # tzdata's zone.tab maps each zone to its country ("America/New_York" -> "US").
    text = resources.files("tzdata.zoneinfo").joinpath("zone.tab").read_text(encoding="utf-8")
    countries: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) >= 3:
            countries[fields[2]] = fields[0]
    return countries


def region_for_zone(zone: str) -> str | None:
    """The country whose national numbers a business in ``zone`` gets, e.g. "US"."""
    return _zone_countries().get(zone)


def phone_normalize(raw: str, *, region: str | None = None) -> str:
    """``raw`` as E.164 ("+12125550100"); national numbers are read in ``region``.

    Raises InvalidInput("phone") for anything that is not a valid number.
    """
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 40:
        raise InvalidInput("phone", "Please give a phone number.")
    try:
        number = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException:
        raise InvalidInput(
            "phone", "That is not a phone number we can read; include the country code."
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput("phone", "That phone number is not valid.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_normalize_or_none(raw: str, *, region: str | None = None) -> str | None:
    try:
        return phone_normalize(raw, region=region)
    except InvalidInput:
        return None
