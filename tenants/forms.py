from __future__ import annotations

import zoneinfo
from functools import cache
from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import (
    password_validators_help_text_html,
    validate_password,
)
from django.core.exceptions import ValidationError

from tenants.models import Plan, Tenant, slug_format, validate_slug_not_reserved
from tenants.services import normalize_email, suggest_slug

DEFAULT_TIMEZONE = "America/New_York"


@cache
def timezone_choices() -> list[tuple[str, str]]:
    # Only Area/Location names: the bare aliases ("EST5EDT", "Zulu") confuse more than help.
    zones = sorted(
        z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith("Etc/")
    )
    return [("UTC", "UTC"), *((z, z.replace("_", " ")) for z in zones)]


class EmailAuthenticationForm(AuthenticationForm):
    """Django's login form, by email: owners' usernames are their lowercased email."""

    username = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email and password do not match an account.",
    }

    def clean_username(self) -> str:
        return normalize_email(self.cleaned_data["username"])


class SignupForm(forms.Form):
    name = forms.CharField(
        label="Business name",
        max_length=120,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "organization"}),
    )
    slug = forms.CharField(
        label="Booking page address",
        max_length=50,
        required=False,
        help_text="Your customers book on /b/your-address/. Leave it empty and we pick "
        "one from the business name.",
        widget=forms.TextInput(attrs={"autocapitalize": "none", "spellcheck": "false"}),
    )
    timezone = forms.ChoiceField(
        label="Time zone", choices=timezone_choices, initial=DEFAULT_TIMEZONE
    )
    plan = forms.ChoiceField(label="Plan", choices=Plan.choices, initial=Plan.STARTER)
    email = forms.EmailField(
        label="Your email", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validators_help_text_html(),
    )

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError("Please enter the name of your business.")
        return name

    def clean_slug(self) -> str:
        slug: str = self.cleaned_data["slug"].strip().lower()
        if not slug:
            return slug  # filled in from the name in clean()
        slug_format(slug)
        validate_slug_not_reserved(slug)
        if Tenant.objects.filter(slug=slug).exists():
            raise ValidationError(
                "%(slug)s is already taken; please choose another.", params={"slug": slug}
            )
        return slug

    def clean_email(self) -> str:
        email = normalize_email(self.cleaned_data["email"])
        # An existing account must prove its password before it gets another
        # business: that happens after login, not on an anonymous form.
        if User.objects.filter(username=email).exists():
            raise ValidationError("An account with this email already exists; please log in.")
        return email

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not cleaned.get("slug") and cleaned.get("name") and "slug" not in self.errors:
            cleaned["slug"] = suggest_slug(cleaned["name"])
        password = cleaned.get("password")
        email = cleaned.get("email")
        if password:
            candidate = User(username=email or "", email=email or "")
            try:
                validate_password(password, user=candidate)
            except ValidationError as exc:
                self.add_error("password", exc)
        return cleaned

    def add_service_error(self, error: ValidationError) -> None:
        """Show a refusal from the service next to the field it names, if the form has it."""
        if hasattr(error, "error_dict"):
            for field, messages in error.message_dict.items():
                self.add_error(field if field in self.fields else None, messages)
        else:
            self.add_error(None, error)
