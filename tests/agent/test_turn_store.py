"""A chat turn's cheap path: cached business facts, one write transaction, kept connections.

The facts are cached per business, so every change to what they are read from
must reach the next turn; availability must never come from the cache.
"""

from __future__ import annotations

import shutil
from datetime import date, time
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from agent import db as agent_db
from agent.engine import conversation_start, conversation_turn
from agent.facts import business_facts, business_facts_cached
from agent.models import Conversation, Message
from agent.tools import ToolRunner
from booking.config import config_export, config_import
from booking.models import Closure, Service, StaffMember, WorkingHours
from booking.selectors import profile_get, slots_search
from booking.services import appointment_book
from tenants.context import current_alias, tenant_atomic, tenant_context
from tenants.db import tenant_db_path
from tests.booking.conftest import NOW, MakeShop, Shop, ada, local


def say(conversation: Conversation, text: str) -> str:
    return conversation_turn(conversation=conversation, text=text).text


def tenant_queries() -> CaptureQueriesContext:
    return CaptureQueriesContext(connections[current_alias()])


# --- the facts cache ---------------------------------------------------------------------


def test_cached_facts_are_read_once_then_served_without_queries(shop: Shop) -> None:
    first = business_facts_cached(now=NOW)
    with tenant_queries() as queries:
        again = business_facts_cached(now=NOW)
    assert len(queries) == 0
    assert again == first == business_facts(now=NOW)


def test_a_price_changed_in_the_dashboard_reaches_the_next_turn(shop: Shop) -> None:
    conversation = conversation_start(channel="chat")
    assert "120" in say(conversation, "How much is a cleaning?")
    service = Service.objects.get(name="Cleaning")
    service.price = Decimal("135.00")
    service.save()  # what the dashboard's form does
    reply = say(conversation, "How much is a cleaning?")
    assert "135" in reply and "120" not in reply


def test_a_setup_import_reaches_the_next_turn(shop: Shop) -> None:
    conversation = conversation_start(channel="chat")
    say(conversation, "what are your opening hours?")
    setup = config_export()
    setup["services"][0]["price"] = "99.00"
    ana = next(person for person in setup["staff"] if person["name"] == "Ana")
    ana["hours"]["sat"] = [["10:00", "14:00"]]
    config_import(setup)

    facts = business_facts_cached(now=NOW)
    assert facts.service_named("Cleaning").price == Decimal("99.00")  # type: ignore[union-attr]
    assert facts.hours["sat"] == [(time(10), time(14))]
    assert "99" in say(conversation, "How much is a cleaning?")


@pytest.mark.parametrize("change", ["hours", "closure", "staff_off", "offers", "profile",
                                    "delete_hours"])
def test_every_kind_of_change_replaces_the_cached_facts(shop: Shop, change: str) -> None:
    before = business_facts_cached(now=NOW)
    ana = StaffMember.objects.get(name="Ana")
    if change == "hours":
        WorkingHours.objects.create(staff=ana, weekday=5, start=time(9), end=time(11))
    elif change == "closure":
        Closure.objects.create(start=local(2026, 3, 20, 0, 0), end=local(2026, 3, 21, 0, 0),
                               reason="Inventory")
    elif change == "staff_off":
        ben = StaffMember.objects.get(name="Ben")
        ben.active = False
        ben.save()
    elif change == "offers":
        ana.services.remove(Service.objects.get(name="Whitening"))
    elif change == "profile":
        profile = profile_get()
        profile.min_notice_minutes = 240
        profile.save()
    elif change == "delete_hours":
        WorkingHours.objects.filter(staff=ana, weekday=6).delete()
    after = business_facts_cached(now=NOW)
    assert after != before
    assert after == business_facts(now=NOW)


def test_a_change_rolled_back_leaves_the_cache_alone_and_one_committed_replaces_it(
    shop: Shop,
) -> None:
    cached = business_facts_cached(now=NOW)
    with pytest.raises(RuntimeError), tenant_atomic():
        Service.objects.filter(name="Cleaning").get().delete()
        raise RuntimeError("abandon")
    with tenant_queries() as queries:
        assert business_facts_cached(now=NOW) == cached
    assert len(queries) == 0
    with tenant_atomic():
        service = Service.objects.get(name="Cleaning")
        service.description = "Polish and floss"
        service.save()
        # Not yet committed: nothing may be read under the new version yet.
    assert business_facts_cached(now=NOW).service_named(  # type: ignore[union-attr]
        "Cleaning").description == "Polish and floss"


def test_the_cache_is_per_business(make_shop: MakeShop, frozen: object) -> None:
    first = make_shop()
    with tenant_context(first.tenant):
        setup = config_export()
    setup["name"] = "Other Clinic"
    setup["services"][0]["price"] = "7.00"
    second = make_shop(setup)
    with tenant_context(first.tenant):
        one = business_facts_cached(now=NOW)
    with tenant_context(second.tenant):
        two = business_facts_cached(now=NOW)
    with tenant_context(first.tenant):
        assert business_facts_cached(now=NOW) == one
    assert (one.name, two.name) == ("Test Dental", "Other Clinic")
    assert two.services[0].price == Decimal("7.00") != one.services[0].price


# --- availability stays fresh ------------------------------------------------------------


def test_a_booking_made_elsewhere_is_never_offered_from_cached_facts(shop: Shop) -> None:
    facts = business_facts_cached(now=NOW)
    runner = ToolRunner(channel="chat", now=NOW, facts=facts)
    args = {"service": "Cleaning", "date": "2026-03-03", "time": "09:00"}
    offered = runner.run("check_availability", args)
    assert offered["available"] is True
    appointment_book(service_id=shop.services["Cleaning"], start=local(2026, 3, 3, 9, 0),
                     customer=ada(), channel="web", now=NOW)
    # Still the cached facts (a booking is not a change to the business), yet the slot is gone.
    with tenant_queries() as queries:
        assert business_facts_cached(now=NOW) == facts
    assert len(queries) == 0
    again = ToolRunner(channel="chat", now=NOW, facts=business_facts_cached(now=NOW))
    answer = again.run("check_availability", args)
    assert answer["available"] is False
    assert all(slot["start"] != offered["slots"][0]["start"] for slot in answer["slots"])


@pytest.mark.parametrize(("service", "staff", "window", "first", "last"), [
    ("Cleaning", None, None, date(2026, 3, 2), date(2026, 3, 16)),
    ("Checkup", None, "morning", date(2026, 3, 3), date(2026, 3, 9)),
    ("Checkup", "Ben", None, date(2026, 3, 2), date(2026, 3, 31)),
    ("Whitening", "Ana", (time(13), time(16)), date(2026, 3, 12), date(2026, 3, 16)),
])
def test_the_assistants_search_finds_exactly_what_the_booking_engine_finds(
    shop: Shop, service: str, staff: str | None, window: object, first: date, last: date,
) -> None:
    for start, whom in ((local(2026, 3, 3, 9, 0), "Ana"), (local(2026, 3, 3, 10, 0), "Ben"),
                        (local(2026, 3, 4, 14, 0), "Ana"), (local(2026, 3, 12, 13, 0), "Ben")):
        appointment_book(service_id=shop.services["Checkup"], start=start, customer=ada(),
                         channel="web", staff_id=shop.staff[whom], now=NOW)
    Closure.objects.create(start=local(2026, 3, 5, 9, 0), end=local(2026, 3, 5, 12, 0),
                           staff=StaffMember.objects.get(name="Ana"), reason="Course")
    runner = ToolRunner(channel="chat", now=NOW, facts=business_facts_cached(now=NOW))
    fact = runner.facts.service_named(service)
    assert fact is not None
    staff_id = shop.staff[staff] if staff else None
    ours = runner._slots(fact, first=first, last=last, staff_id=staff_id,
                         window=window)  # type: ignore[arg-type]
    theirs = slots_search(service_id=fact.id, start_date=first, end_date=last,
                          staff_id=staff_id, window=window, now=NOW)  # type: ignore[arg-type]
    assert ours == theirs
    assert ours  # the case compares real slots, not two empty lists


# --- one write transaction per turn ------------------------------------------------------


def test_a_turn_stores_its_messages_and_state_in_one_transaction(shop: Shop) -> None:
    conversation = conversation_start(channel="chat")
    say(conversation, "I'd like a cleaning")  # warm: facts cached
    with tenant_queries() as queries:
        say(conversation, "how much is a checkup?")
    statements = [q["sql"] for q in queries.captured_queries]
    writes = [sql for sql in statements if sql.startswith(("INSERT", "UPDATE", "DELETE"))]
    # The customer's message and the reply in one INSERT, then the conversation's UPDATE.
    assert len(writes) == 2, writes
    assert writes[0].startswith('INSERT INTO "agent_message"')
    assert writes[1].startswith('UPDATE "agent_conversation"')


def test_a_failure_while_storing_a_turn_leaves_nothing_half_written(
    shop: Shop, monkeypatch: pytest.MonkeyPatch,
) -> None:
    conversation = conversation_start(channel="chat")
    say(conversation, "I'd like a cleaning on Tuesday")
    conversation.refresh_from_db()
    state_before = conversation.state
    messages_before = list(Message.objects.filter(conversation=conversation).values_list(
        "role", "text"))

    def broken_save(self: Conversation, *args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(Conversation, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        say(conversation, "how much is a cleaning?")
    monkeypatch.undo()

    assert list(Message.objects.filter(conversation=conversation).values_list(
        "role", "text")) == messages_before
    assert Conversation.objects.get(pk=conversation.pk).state == state_before
    # The conversation carries on from where it was.
    assert say(conversation, "how much is a cleaning?")
    assert Message.objects.filter(conversation=conversation).count() > len(messages_before)


def test_the_transcript_keeps_the_order_of_events(shop: Shop) -> None:
    conversation = conversation_start(channel="chat")
    say(conversation, "anything on Tuesday for a cleaning?")
    roles = list(Message.objects.filter(conversation=conversation).order_by(
        "created_at", "pk").values_list("role", flat=True))
    assert roles[:2] == ["assistant", "user"]  # the greeting, then the customer
    assert roles[-1] == "assistant"
    assert set(roles[2:-1]) == {"tool"}


# --- connections kept between turns ------------------------------------------------------


def test_a_thread_keeps_its_connection_to_the_business_between_turns(shop: Shop) -> None:
    alias = current_alias()
    agent_db.turn_begins()
    conversation = conversation_start(channel="chat")
    agent_db.turn_ends(alias)
    kept = connections[alias].connection
    assert kept is not None
    agent_db.turn_begins()
    say(conversation, "hello")
    agent_db.turn_ends(alias)
    assert connections[alias].connection is kept


def test_a_kept_connection_is_dropped_when_its_file_is_replaced(
    shop: Shop, tmp_path: Path,
) -> None:
    alias = current_alias()
    agent_db.turn_begins()
    conversation_start(channel="chat")
    agent_db.turn_ends(alias)
    kept = connections[alias].connection
    assert kept is not None
    live = tenant_db_path(shop.tenant.pk)
    connections[alias].cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    copy = tmp_path / "copy.sqlite3"
    shutil.copyfile(live, copy)
    copy.replace(live)  # a new inode in place, as tenant_restore does
    agent_db.turn_begins()
    assert connections[alias].connection is None or connections[alias].connection is not kept


def test_with_no_keep_time_the_connection_closes_after_the_turn(
    shop: Shop, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(agent_db, "KEEP_OPEN_SECONDS", -1.0)
    alias = current_alias()
    agent_db.turn_begins()
    conversation_start(channel="chat")
    agent_db.turn_ends(alias)
    assert connections[alias].connection is None


def test_a_conversation_can_start_inside_a_callers_transaction(shop: Shop) -> None:
    # The process-wide writer queue steps aside there: the caller may hold the lock.
    with tenant_atomic():
        conversation = conversation_start(channel="sms", external_key="+12125550100")
    assert Conversation.objects.filter(pk=conversation.pk).exists()
    assert say(conversation, "how much is a checkup?")


def test_a_cache_outage_costs_reads_not_turns(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent import facts as facts_module

    class Down:
        def __getattr__(self, name: str) -> object:
            raise ConnectionError("cache down")

    monkeypatch.setattr(facts_module, "cache", Down())
    assert business_facts_cached(now=NOW) == business_facts(now=NOW)
    with tenant_queries() as queries:
        business_facts_cached(now=NOW)
    assert len(queries) > 0  # nothing cached without a version to trust
    conversation = conversation_start(channel="chat")
    assert "120" in say(conversation, "How much is a cleaning?")
    service = Service.objects.get(name="Cleaning")
    service.price = Decimal("125.00")
    service.save()  # its invalidation fails after the commit, quietly
    assert "125" in say(conversation, "How much is a cleaning?")
