"""Forms of the public booking page.

They parse what the browser sent and turn the booking engine's validation
(``customer_details_clean``) into field errors; the rules themselves live in
``booking.services``. Ids arrive as plain numbers in hidden fields or query
strings, so each is checked against this business's own catalogue here:
a tampered or foreign id is a form error, never an exception.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from django import forms

from booking.errors import InvalidInput
from booking.models import Service, StaffMember
from booking.selectors import EARLIEST_YEAR, LATEST_YEAR, service_get, staff_list
from booking.services import customer_details_clean

IDEMPOTENCY_KEY = re.compile(r"^[0-9a-f]{32}$")
WEEKDAYS = [
    ("0", "Mon"), ("1", "Tue"), ("2", "Wed"), ("3", "Thu"),
    ("4", "Fri"), ("5", "Sat"), ("6", "Sun"),
]
PARTS_OF_DAY = [
    ("", "Any time"), ("morning", "Morning"), ("afternoon", "Afternoon"), ("evening", "Evening"),
]


def parse_start(value: str) -> datetime | None:
    """An aware datetime from an ISO 8601 string with offset, else None."""
    try:
        text = value.strip()
        # fromisoformat's C parser stops at a NUL and would accept "...-05:00\x00".
        if not (text.isascii() and text.isprintable()):
            return None
        start = datetime.fromisoformat(text)
    except (AttributeError, ValueError):
        return None
    if start.utcoffset() is None or not EARLIEST_YEAR <= start.year <= LATEST_YEAR:
        return None
    return start


def parse_date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        return None
    return day if EARLIEST_YEAR <= day.year <= LATEST_YEAR else None


def parse_id(value: str | None) -> int | None:
    """A positive id from a query string; None for anything else."""
    if not value or not value.isascii() or not value.isdigit() or len(value) > 12:
        return None
    number = int(value)
    return number if number > 0 else None


def service_from(value: object) -> Service | None:
    return service_get(value) if isinstance(value, int) else None


def staff_for_service(service: Service, staff_id: int | None) -> StaffMember | None:
    """The active staff member ``staff_id`` when they offer ``service``."""
    if staff_id is None:
        return None
    return staff_list(service_id=service.pk).filter(pk=staff_id).first()


class ServiceChoiceMixin(forms.Form):
    """Hidden service and optional staff ids, checked against this business."""

    service = forms.IntegerField(
        widget=forms.HiddenInput, min_value=1,
        error_messages=dict.fromkeys(("required", "invalid", "min_value"),
                                     "Please choose one of the services listed."),
    )
    staff = forms.IntegerField(
        widget=forms.HiddenInput, min_value=1, required=False,
        error_messages=dict.fromkeys(("invalid", "min_value"),
                                     "Please choose someone who offers this service."),
    )

    def clean_service(self) -> Service:
        service = service_from(self.cleaned_data.get("service"))
        if service is None:
            raise forms.ValidationError("Please choose one of the services listed.")
        return service

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        service = cleaned.get("service")
        staff_id = cleaned.get("staff")
        if isinstance(service, Service) and staff_id is not None:
            member = staff_for_service(service, staff_id)
            if member is None:
                self.add_error("staff", "Please choose someone who offers this service.")
            else:
                cleaned["staff_member"] = member
        return cleaned


class StartField(forms.CharField):
    """A slot start as the page lists it: ISO 8601 with the business's offset."""

    default_error_messages = {
        "required": "Please pick a time.",
        "invalid": "Please pick one of the times listed.",
    }

    def to_python(self, value: Any) -> datetime | None:  # type: ignore[override]
        text = super().to_python(value)
        if not text:
            return None
        start = parse_start(text)
        if start is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return start


class CustomerFieldsMixin(forms.Form):
    name = forms.CharField(
        label="Your name", max_length=120,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
        error_messages={"required": "Please give your name."},
    )
    phone = forms.CharField(
        label="Mobile phone", max_length=40,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}),
        help_text="For a reminder and so we can reach you about the appointment.",
        error_messages={"required": "Please give a phone number."},
    )

    def clean_customer(self, cleaned: dict[str, Any]) -> None:
        if "name" not in cleaned or "phone" not in cleaned:
            return
        try:
            cleaned["customer"] = customer_details_clean(
                name=cleaned["name"], phone=cleaned["phone"], email=cleaned.get("email") or "",
            )
        except InvalidInput as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)


class BookingForm(CustomerFieldsMixin, ServiceChoiceMixin):
    """The last step: a slot plus who the appointment is for."""

    start = StartField(widget=forms.HiddenInput)
    email = forms.EmailField(
        label="Email (optional)", required=False, max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    # One key per rendered form: a double click or a resubmitted page books once.
    key = forms.RegexField(regex=IDEMPOTENCY_KEY, widget=forms.HiddenInput,
                           error_messages={"invalid": "Please reload the page and try again.",
                                           "required": "Please reload the page and try again."})

    field_order = ["service", "staff", "start", "key", "name", "phone", "email"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        self.clean_customer(cleaned)
        return cleaned


class RescheduleForm(forms.Form):
    start = StartField(widget=forms.HiddenInput)
    staff = forms.IntegerField(
        widget=forms.HiddenInput, min_value=1, required=False,
        error_messages=dict.fromkeys(("invalid", "min_value"),
                                     "Please choose someone who offers this service."),
    )

    def __init__(self, *args: Any, service: Service, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.service = service

    def clean_staff(self) -> StaffMember | None:
        member = staff_for_service(self.service, self.cleaned_data.get("staff"))
        if self.cleaned_data.get("staff") is not None and member is None:
            raise forms.ValidationError("Please choose someone who offers this service.")
        return member


class WaitlistForm(CustomerFieldsMixin, ServiceChoiceMixin):
    days = forms.TypedMultipleChoiceField(
        label="Days that suit you", choices=WEEKDAYS, coerce=int, required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave all unticked if any day is fine.",
    )
    part_of_day = forms.ChoiceField(
        label="Time of day", choices=PARTS_OF_DAY, required=False, widget=forms.RadioSelect,
    )
    auto_book = forms.BooleanField(
        label="Book me straight in when a matching time frees up "
              "(we will text you the details; you can still cancel)",
        required=False,
    )

    field_order = ["service", "staff", "name", "phone", "days", "part_of_day", "auto_book"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        self.clean_customer(cleaned)
        return cleaned
