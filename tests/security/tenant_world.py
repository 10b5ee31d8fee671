"""Two businesses for the cross-tenant probes: a victim rich in data and an outsider.

The victim has more rows of every kind than the outsider, so most of its ids do
not exist in the outsider's database, while id 1 (and a few more) exist in both:
the probes try both cases. Everything the victim owns is named so that it can be
recognised in any response: a response to the outsider that contains one of
``World.secrets`` has leaked.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import time_machine
from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Model
from django.test import Client
from django.test.utils import override_settings

from agent.engine import chat_settings_get, conversation_start
from agent.models import Conversation, Message
from booking import sms
from booking.config import config_import
from booking.models import (
    Appointment,
    BusinessProfile,
    Service,
    StaffMember,
    new_calendar_token,
)
from booking.selectors import profile_get
from booking.services import appointment_book, appointment_cancel, customer_details_clean
from booking.tokens import manage_token_for
from booking.waitlist import offer_token_for, waitlist_join, waitlist_offer
from tenants.context import tenant_context
from tenants.models import Membership, Tenant
from tests.booking.conftest import NOW, WEEKDAY_HOURS, base_setup, local
from tests.conftest import MakeTenant
from voice.models import Call

VICTIM_NUMBER = "+15005550101"
OUTSIDER_NUMBER = "+15005550202"

VICTIM_CUSTOMERS = [
    ("Victoria Vexley", "+12125559871", "victoria@vexley.example"),
    ("Vincent Vortigern", "+12125559872", "vincent@vexley.example"),
    ("Violeta Vukovic", "+12125559873", ""),
    ("Vaughn Velasquez", "+12125559874", "vaughn@vexley.example"),
    ("Vivienne Valdez", "+12125559875", ""),
]
VICTIM_CHAT_TEXT = "VEXLEY-CHAT-SECRET please remember my gate code 4471"
VICTIM_GREETING = "Welcome to Vexley Dental, your secret smile studio"
VICTIM_CALL_SID = "CAvexley00000000000000000000000001"


def _victim_setup() -> dict[str, Any]:
    setup = base_setup()
    setup["name"] = "Vexley Dental"
    setup["services"] = [
        dict(setup["services"][0], name="Vexley Veneers", description="Vexley porcelain"),
        dict(setup["services"][1], name="Vortex Whitening"),
        dict(setup["services"][2], name="Velvet Polish"),
        dict(setup["services"][1], name="Vireo Scan"),
    ]
    every = ["Vexley Veneers", "Vortex Whitening", "Velvet Polish", "Vireo Scan"]
    weekdays = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    setup["staff"] = [
        {"name": "Valerie Vance", "services": every, "hours": weekdays},
        {"name": "Viktor Volkov", "services": every, "hours": weekdays},
        {"name": "Vesna Varga", "services": every, "hours": weekdays},
    ]
    setup["closures"] = [
        {"start": "2026-03-13T00:00", "end": "2026-03-14T00:00", "staff": None,
         "reason": "Vexley staff retreat"},
        {"start": "2026-03-20T00:00", "end": "2026-03-21T00:00", "staff": "Viktor Volkov",
         "reason": "Viktor's Vexley course"},
    ]
    return setup


def _outsider_setup() -> dict[str, Any]:
    setup = base_setup()
    setup["name"] = "Oakridge Salon"
    setup["services"] = [dict(setup["services"][1], name="Oakridge Trim")]
    setup["staff"] = [{"name": "Olga Orr", "services": ["Oakridge Trim"],
                       "hours": dict.fromkeys(("mon", "tue", "wed", "thu", "fri"),
                                              WEEKDAY_HOURS)}]
    setup["closures"] = [
        {"start": "2026-03-13T00:00", "end": "2026-03-14T00:00", "staff": None,
         "reason": "Oakridge inventory"},
    ]
    return setup


@dataclass
class Business:
    tenant: Tenant
    owner: User
    services: dict[str, int]
    staff: dict[str, int]
    appointments: list[Appointment] = field(default_factory=list)
    manage_tokens: list[str] = field(default_factory=list)
    feed_tokens: list[str] = field(default_factory=list)
    offer_tokens: list[str] = field(default_factory=list)
    conversations: list[Conversation] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return self.tenant.slug

    def ids(self) -> dict[type[Model], list[Any]]:
        """Every primary key of every model of the business's database."""
        with tenant_context(self.tenant):
            return {
                model: list(model._base_manager.order_by("pk").values_list("pk", flat=True))
                for model in tenant_models()
            }


@dataclass
class World:
    victim: Business
    outsider: Business
    secrets: list[str]

    def victim_rows(self) -> dict[str, list[dict[str, Any]]]:
        return database_rows(self.victim.tenant)


def tenant_models() -> list[type[Model]]:
    return [
        model for model in apps.get_models(include_auto_created=True)
        if model._meta.app_label in settings.TENANT_APPS
    ]


def database_rows(tenant: Tenant) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of the business's database, to compare before and after."""
    with tenant_context(tenant):
        return {
            model._meta.label: list(model._base_manager.order_by("pk").values())
            for model in tenant_models()
        }


def owner_of(tenant: Tenant) -> User:
    return tenant.memberships.get(role=Membership.Role.OWNER).user


def _business(make_tenant: MakeTenant, setup: dict[str, Any], *, slug: str, email: str,
              number: str) -> Business:
    tenant = make_tenant(slug, name=setup["name"], owner_email=email, plan="premium")
    Tenant.objects.filter(pk=tenant.pk).update(phone_number=number)
    tenant.refresh_from_db()
    with tenant_context(tenant):
        config_import(setup)
        services = dict(Service.objects.values_list("name", "pk"))
        staff = dict(StaffMember.objects.values_list("name", "pk"))
    return Business(tenant=tenant, owner=owner_of(tenant), services=services, staff=staff)


def _book(business: Business, service: str, staff: str, start: datetime,
          customer: tuple[str, str, str]) -> Appointment:
    name, phone, email = customer
    appointment = appointment_book(
        service_id=business.services[service], staff_id=business.staff[staff], start=start,
        customer=customer_details_clean(name=name, phone=phone, email=email),
        channel=Appointment.Channel.WEB,
    )
    business.appointments.append(appointment)
    business.manage_tokens.append(manage_token_for(appointment))
    return appointment


def _talk(business: Business, *, channel: str, texts: list[str], phone: str = "",
          key: str = "") -> Conversation:
    conversation = conversation_start(channel=channel, customer_phone=phone, external_key=key)
    for n, text in enumerate(texts):
        Message.objects.create(conversation=conversation,
                               role="user" if n % 2 == 0 else "assistant", text=text)
    business.conversations.append(conversation)
    return conversation


def _feeds(business: Business) -> None:
    token = new_calendar_token()
    BusinessProfile.objects.filter(pk=profile_get().pk).update(calendar_token=token)
    business.feed_tokens.append(token)
    for pk in business.staff.values():
        token = new_calendar_token()
        StaffMember.objects.filter(pk=pk).update(calendar_token=token)
        business.feed_tokens.append(token)


def build_victim(make_tenant: MakeTenant) -> Business:
    victim = _business(make_tenant, _victim_setup(), slug="vexley-dental",
                       email="victim-owner@vexley.example", number=VICTIM_NUMBER)
    with tenant_context(victim.tenant):
        BusinessProfile.objects.filter(pk=profile_get().pk).update(
            display_name="Vexley Dental", address="77 Vexley Lane, Vexford",
            phone="+12125559800", email="desk@vexley.example",
        )
        settings_row = chat_settings_get()
        settings_row.greeting = VICTIM_GREETING
        settings_row.save()
        staff = ["Valerie Vance", "Viktor Volkov", "Vesna Varga"]
        services = ["Vexley Veneers", "Vortex Whitening", "Velvet Polish", "Vireo Scan"]
        for n in range(8):
            day = (10, 11, 12, 16)[n % 4]  # not the 13th: closed
            _book(victim, services[n % 4], staff[n % 3], local(2026, 3, day, 9 + n % 3),
                  VICTIM_CUSTOMERS[n % 5])
        appointment_cancel(appointment=victim.appointments[-1], by_customer=False)
        # Waiting for a full Thursday, one of them offered a freed slot.
        wanted = [{"date": "2026-03-12", "start": "09:00", "end": "17:00"}]
        entries = [
            waitlist_join(customer=customer_details_clean(name=name, phone=phone, email=email),
                          service_id=victim.services["Vireo Scan"], windows=wanted)
            for name, phone, email in VICTIM_CUSTOMERS[:3]
        ]
        offered = waitlist_offer(entry=entries[0], start=local(2026, 3, 12, 14),
                                 staff_id=victim.staff["Vesna Varga"])
        victim.offer_tokens.append(offer_token_for(offered))
        name, phone, _email = VICTIM_CUSTOMERS[0]
        _talk(victim, channel=Conversation.Channel.CHAT,
              texts=[VICTIM_CHAT_TEXT, f"Thanks {name}, noted."])
        _talk(victim, channel=Conversation.Channel.CHAT,
              texts=["VEXLEY-CHAT-SECRET second visitor", "Vexley Veneers it is."])
        spoken = _talk(victim, channel=Conversation.Channel.PHONE, phone=phone,
                       key=VICTIM_CALL_SID,
                       texts=["VEXLEY-CALL-SECRET I need Vexley Veneers", "Sure."])
        _talk(victim, channel=Conversation.Channel.SMS, phone=VICTIM_CUSTOMERS[1][1],
              key=VICTIM_CUSTOMERS[1][1], texts=["VEXLEY-SMS-SECRET move me", "Done."])
        victim.calls.append(Call.objects.create(
            call_sid=VICTIM_CALL_SID, caller=phone, called=VICTIM_NUMBER,
            conversation=spoken, transcription="VEXLEY-VOICEMAIL-SECRET call me back",
            recording_url="https://api.twilio.example/vexley-recording",
        ))
        victim.calls.append(Call.objects.create(
            call_sid="CAvexley00000000000000000000000002", caller=VICTIM_CUSTOMERS[3][1],
            called=VICTIM_NUMBER,
        ))
        _feeds(victim)
    return victim


def edit_in_dashboard(victim: Business) -> None:
    """The victim's owner edits a service in the dashboard, so its logs hold victim entries."""
    client = Client()
    client.force_login(victim.owner)
    pk = victim.services["Vireo Scan"]
    response = client.post(f"/dashboard/booking/service/{pk}/change/", {
        "name": "Vireo Scan", "description": "Vexley deluxe scan", "duration_minutes": "30",
        "price": "95.00", "buffer_before_minutes": "0", "buffer_after_minutes": "0",
        "active": "on", "position": "4", "_save": "Save",
    })
    assert response.status_code == 302, response.status_code


def build_outsider(make_tenant: MakeTenant) -> Business:
    outsider = _business(make_tenant, _outsider_setup(), slug="oakridge-salon",
                         email="owner@oakridge.example", number=OUTSIDER_NUMBER)
    with tenant_context(outsider.tenant):
        _book(outsider, "Oakridge Trim", "Olga Orr", local(2026, 3, 10, 10),
              ("Oscar Odd", "+12125550111", "oscar@oakridge.example"))
        waitlist_join(customer=customer_details_clean(name="Otto Oyelaran",
                                                      phone="+12125550112"),
                      service_id=outsider.services["Oakridge Trim"])
        _talk(outsider, channel=Conversation.Channel.CHAT, texts=["Oakridge question"])
        outsider.calls.append(Call.objects.create(
            call_sid="CAoakridge000000000000000000000001", caller="+12125550111",
            called=OUTSIDER_NUMBER,
        ))
        _feeds(outsider)
    return outsider


def victim_secrets(victim: Business) -> list[str]:
    """Strings only the victim's data contains (matched case-insensitively)."""
    found = ["vexley", "vexford", "Vortex Whitening", "Velvet Polish", "Vireo Scan",
             "Valerie Vance", "Viktor", "Vesna", "gate code 4471", "555987", "555-987",
             "555-9800", VICTIM_CALL_SID, "CAvexley"]
    for name, phone, _email in VICTIM_CUSTOMERS:
        found += [name, name.split()[1], phone]
    found += [a.reference for a in victim.appointments]
    found += [str(victim.tenant.pk), victim.tenant.pk.hex, victim.tenant.slug,
              victim.owner.email]
    return found


@contextmanager
def built_world(make_tenant: MakeTenant) -> Iterator[World]:
    """The victim and the outsider at the booking tests' NOW; no tenant in context."""
    sms.outbox.clear()
    with time_machine.travel(NOW, tick=False), override_settings(
        SMS_BACKEND="booking.sms.LocmemBackend", AGENT_PROVIDER="offline"
    ):
        victim = build_victim(make_tenant)
        edit_in_dashboard(victim)
        outsider = build_outsider(make_tenant)
        world = World(victim=victim, outsider=outsider, secrets=victim_secrets(victim))
        # The outsider's own data must never look like the victim's.
        outsider_text = str(database_rows(outsider.tenant)).lower()
        clashes = [s for s in world.secrets if s.lower() in outsider_text]
        assert not clashes, clashes
        yield world
    sms.outbox.clear()
