"""Calls in the owners' dashboard: read-only, with the way to each transcript."""

from __future__ import annotations

from django.test import Client

from tenants.models import Membership
from tests.booking.conftest import Shop
from tests.voice.conftest import JANE, Phone, post


def test_owners_see_calls_read_only_with_their_transcript(shop: Shop, client: Client) -> None:
    call = Phone(client, shop.tenant.slug, caller=JANE)
    call.dial()
    call.say("what services do you have?")
    post(client, f"/voice/{call.slug}/status", call.fields(CallStatus="completed",
                                                           CallDuration="75"))
    from voice.models import Call

    row = Call.objects.get()
    owner = shop.tenant.memberships.get(role=Membership.Role.OWNER).user
    client.force_login(owner)

    listing = client.get("/dashboard/voice/call/")
    assert listing.status_code == 200
    html = listing.content.decode()
    assert JANE in html and "1:15" in html
    transcript = f"/dashboard/agent/conversation/{row.conversation_id}/change/"
    assert transcript in html
    detail = client.get(f"/dashboard/voice/call/{row.pk}/change/")
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode(), "calls are read-only"
    assert client.get("/dashboard/voice/call/add/").status_code == 403
    assert "what services do you have?" in client.get(transcript).content.decode()
