"""The offline assistant's side of a conversation: a deterministic state machine.

`respond()` reads one customer message with `agent.language.parse`, decides
what to do, and acts only through `call_tool` (the same tools the LLM calls,
see `agent.tools`), so it never touches the database, and every time it offers
came from `check_availability`. It asks for one missing thing at a time, says
dates back with their weekday, confirms before it books, cancels or moves
anything, answers questions at any point and then picks up where it was.

The state is a JSON object the caller stores between turns (``{}`` starts a
conversation); `respond` never mutates the dict it is given:

    {"v": 1,
     "flow": null | "book" | "cancel" | "reschedule" | "find" | "waitlist",
     "step": what was just asked (it also picks the parser's `expecting`):
             null | "service" | "when" | "slot" | "name" | "phone" | "confirm"
             | "reference" | "appointment" | "waitlist_offer" | "suggest" | "more"
             | "ref_what",
     "want": {"service", "staff", "first", "last" (ISO dates), "at" ("HH:MM"),
              "window" (["HH:MM", "HH:MM"]), "earliest"}   # what the customer asked for
     "service_choices": [names offered when a word fit several services],
     "offers": [slot, ...],          # the numbered times last offered
     "chosen": slot | null,   # slot = {"start", "end" (ISO, with offset), "staff", "staff_id"}
     "waitlist_offered": bool,
     "name", "phone", "email": str | null,   # phone as the customer typed it, not caller ID
     "reference": str | null,                # the booking being cancelled/moved/looked up
     "appointment": {"reference", "service", "staff", "start"} | null,  # verified by the tools
     "appointments": [appointment, ...],     # listed for the customer to pick one
     "booked": [appointment, ...],           # made in this conversation
     "recent": appointment | null,           # the one "it" means in "cancel it"
     "suggested": service name | null,       # "Would you like to book one?"
     "misses": int, "turns": int}
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from agent import replies as say
from agent.language import DateSpec, Expecting, Intent, Utterance, parse

if TYPE_CHECKING:
    from agent.facts import BusinessFacts

__all__ = ["BusinessInfo", "DialogueResult", "ServiceInfo", "respond"]

logger = logging.getLogger(__name__)

CallTool = Callable[[str, dict[str, Any]], dict[str, Any]]

STATE_VERSION = 1
# Times offered at once: enough to choose from, few enough to read out on a call.
OFFERS_IN_CHAT = 4
OFFERS_ON_PHONE = 3
# Days looked at one by one for an exact time or a custom window.
PROBE_DAYS = 7
# How far past the asked-for dates the assistant looks for alternatives.
ALTERNATIVE_DAYS = 14
MAX_LISTED_SERVICES = 8
MAX_TEXT = 2000
MISSES_BEFORE_HELP = 2

BOOK, CANCEL, RESCHEDULE, FIND, WAITLIST = "book", "cancel", "reschedule", "find", "waitlist"
MANAGE_FLOWS = (CANCEL, RESCHEDULE, FIND)

# What the assistant just asked for, as the parser's hint for short replies.
EXPECTING: Mapping[str, Expecting] = {
    "service": "service",
    "when": "date",
    "slot": "slot_choice",
    "appointment": "slot_choice",
    "name": "name",
    "phone": "phone",
    "reference": "reference",
    "ref_what": "reference",
}

PARTS_OF_DAY: Mapping[str, tuple[time, time]] = {
    "morning": (time(8), time(12)),
    "afternoon": (time(12), time(17)),
    "evening": (time(17), time(21)),
}
DAY_START, DAY_END = time(8), time(21)

QUESTION_INTENTS = frozenset(
    {Intent.PRICE, Intent.HOURS, Intent.LOCATION, Intent.POLICY, Intent.SERVICES}
)
SORRY = "Sorry, something went wrong on my side. Could you say that again?"

# Words that point at an existing booking rather than the one being made.
_EXISTING_RE = re.compile(
    r"\b(?:my|existing|current|other|old)\s+(?:\w+\s+)?"
    r"(?:appointment|appt|booking|reservation|visit)s?\b",
    re.IGNORECASE,
)
_MOVE_IT_RE = re.compile(
    r"\b(?:move|change|shift|push|switch|reschedule|rebook)\s+(?:it|that|this)\b", re.IGNORECASE
)
_SLOT_WORDS_RE = re.compile(
    r"\b(?:later|earlier|sooner|else|other|different|more)\b", re.IGNORECASE
)
# "at Happy Teeth Dental", "with Smith & Co Salon": a capitalised name ending in a kind of
# business. Only such names count, so "at Ana's" or "with Dr. Lee" never trigger it.
_BUSINESS_WORDS = frozenset({
    "dental", "dentist", "dentistry", "clinic", "salon", "spa", "studio", "barber", "barbers",
    "barbershop", "center", "centre", "practice", "surgery", "office", "hospital", "shop",
    "clinics", "medical", "health", "group",
})
_ELSEWHERE_RE = re.compile(
    r"\b(?:at|with|from|for)\s+(?:the\s+)?(?P<name>(?:[A-Z][\w'&.-]*\s+){0,4}?"
    r"(?:" + "|".join(sorted(w.capitalize() for w in _BUSINESS_WORDS)) + r")s?)\b"
)
_EXPLICIT_DAY_RE = re.compile(
    r"\b(?:today|tonight|tomorrow|tmrw|this|next|after\s+next|jan|feb|mar|apr|may|jun|jul|aug"
    r"|sep|oct|nov|dec)\w*|\d+(?:st|nd|rd|th)\b|\d+\s*[/-]\s*\d+",
    re.IGNORECASE,
)
_LATER_RE = re.compile(r"\b(?:later|after\s+that|afterwards)\b", re.IGNORECASE)
_EARLIER_RE = re.compile(r"\b(?:earlier|sooner|before\s+that)\b", re.IGNORECASE)
_OTHER_TIMES_RE = re.compile(
    r"\b(?:something|anything)\s+else\b|\b(?:other|different|more)\s+(?:times?|slots?|days?|options?)\b",
    re.IGNORECASE,
)
_ANYONE_RE = re.compile(
    r"\b(?:anyone|anybody|no\s+preference|doesn't\s+matter|don't\s+mind|whoever)\b", re.IGNORECASE
)
_OUT_OF_SCOPE: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"\b(?:emergency|bleeding\s+heavily|can't\s+breathe|chest\s+pain)\b", re.I),
        "If this is an emergency, please call your local emergency number right away.",
    ),
    (
        re.compile(
            r"\b(?:pay|payment|credit\s+card|card\s+details|invoice|insurance|refund)\b", re.I
        ),
        "I can't take payments or answer billing or insurance questions here.",
    ),
)


# ---------------------------------------------------------------------------
# What the dialogue knows about the business


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    price: Decimal | str | None
    duration_minutes: int
    description: str = ""
    staff: tuple[str, ...] = ()


@dataclass(frozen=True)
class BusinessInfo:
    """The business as the dialogue needs it; build it with `from_facts` in the app."""

    name: str
    tz: ZoneInfo
    services: tuple[ServiceInfo, ...]
    staff: tuple[str, ...] = ()
    # Opening hours per day key ("mon".."sun"), local times; empty when unknown.
    hours: Mapping[str, Sequence[tuple[time, time]]] = field(default_factory=dict)
    # Whole-business closures: [{"start": ISO, "end": ISO, "reason": text}].
    closures: tuple[Mapping[str, str], ...] = ()
    address: str = ""
    phone: str = ""
    waitlist: bool = False
    region: str = "US"
    currency: str = "$"
    cancellation_notice_minutes: int = 0
    min_notice_minutes: int = 0
    max_days_ahead: int = 0

    @classmethod
    def from_facts(cls, facts: BusinessFacts, *, waitlist: bool) -> BusinessInfo:
        return cls(
            name=facts.name,
            tz=facts.timezone,
            services=tuple(
                ServiceInfo(
                    name=s.name,
                    price=s.price,
                    duration_minutes=s.duration_minutes,
                    description=s.description,
                    staff=tuple(s.staff),
                )
                for s in facts.services
            ),
            staff=tuple(facts.staff),
            hours={k: list(v) for k, v in facts.hours.items()},
            closures=tuple(facts.closures),
            address=facts.address,
            phone=facts.phone,
            waitlist=waitlist,
            region=facts.region,
            currency="£" if facts.region == "GB" else "€" if facts.region in _EURO else "$",
            cancellation_notice_minutes=facts.cancellation_notice_minutes,
            min_notice_minutes=facts.min_notice_minutes,
            max_days_ahead=facts.max_days_ahead,
        )

    def service(self, name: str | None) -> ServiceInfo | None:
        for service in self.services:
            if name is not None and service.name.casefold() == name.casefold():
                return service
        return None

    @property
    def hours_known(self) -> bool:
        return any(self.hours.get(key) for key in say.DAY_KEYS)


_EURO = frozenset({"DE", "FR", "ES", "IT", "NL", "IE", "PT", "AT", "BE", "FI", "GR", "LU"})


@dataclass(frozen=True)
class DialogueResult:
    text: str
    state: dict[str, Any]
    outcome: str | None = None  # "booked", "cancelled", "rescheduled", "waitlisted", "handed_off"
    finished: bool = False


# ---------------------------------------------------------------------------
# State


@dataclass
class _Want:
    service: str | None = None
    staff: str | None = None
    first: str | None = None
    last: str | None = None
    at: str | None = None
    window: list[str] | None = None
    earliest: bool = False

    @property
    def has_when(self) -> bool:
        return bool(self.first or self.at or self.window or self.earliest)

    def time_at(self) -> time | None:
        return time.fromisoformat(self.at) if self.at else None

    def bounds(self) -> tuple[time, time] | None:
        if not self.window:
            return None
        return time.fromisoformat(self.window[0]), time.fromisoformat(self.window[1])


@dataclass
class _State:
    flow: str | None = None
    step: str | None = None
    want: _Want = field(default_factory=_Want)
    service_choices: list[str] = field(default_factory=list)
    offers: list[dict[str, Any]] = field(default_factory=list)
    chosen: dict[str, Any] | None = None
    waitlist_offered: bool = False
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    reference: str | None = None
    appointment: dict[str, Any] | None = None
    appointments: list[dict[str, Any]] = field(default_factory=list)
    booked: list[dict[str, Any]] = field(default_factory=list)
    # The appointment last talked about ("cancel it", "move it"), as the tools returned it.
    recent: dict[str, Any] | None = None
    suggested: str | None = None
    misses: int = 0
    turns: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"v": STATE_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> _State:
        """The stored state, or a fresh one when it is missing or not ours."""
        if not isinstance(raw, Mapping) or raw.get("v") != STATE_VERSION:
            return cls()
        try:
            want = _Want(**{f.name: raw["want"][f.name] for f in fields(_Want)})
            values = {f.name: raw[f.name] for f in fields(cls) if f.name != "want"}
            state = cls(want=want, **values)
            state.misses, state.turns = int(state.misses), int(state.turns)
            if not state.well_formed():
                return cls()
            json.dumps(state.to_dict())
        except (KeyError, TypeError, ValueError):
            return cls()
        return state

    def well_formed(self) -> bool:
        w = self.want
        texts = (self.flow, self.step, self.name, self.phone, self.email, self.reference,
                 self.suggested, w.service, w.staff, w.first, w.last, w.at)
        records = (*self.offers, *self.appointments, *self.booked,
                   *(x for x in (self.chosen, self.appointment, self.recent) if x is not None))
        return (
            all(x is None or isinstance(x, str) for x in texts)
            and all(isinstance(x, list) for x in (self.offers, self.appointments, self.booked,
                                                  self.service_choices))
            and all(isinstance(r, dict) and isinstance(r.get("start"), str) for r in records)
            and (w.window is None or (isinstance(w.window, list) and len(w.window) == 2))
        )

    def forget_times(self) -> None:
        self.offers, self.chosen, self.waitlist_offered = [], None, False

    def end_flow(self, step: str | None = "more") -> None:
        self.flow, self.step = None, step
        self.want = _Want()
        self.forget_times()
        self.service_choices = []
        self.reference, self.appointment, self.appointments = None, None, []


# ---------------------------------------------------------------------------
# Entry point


def respond(
    *,
    state: Mapping[str, Any] | None,
    text: str,
    now: datetime,
    business: BusinessInfo,
    call_tool: CallTool,
    caller_phone: str | None = None,
) -> DialogueResult:
    """One turn: the reply to ``text`` and the state to keep. Never raises on any text."""
    if now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    try:
        turn = _Turn(
            state=_State.from_dict(state),
            now=now,
            business=business,
            call_tool=call_tool,
            caller_phone=caller_phone or None,
        )
        turn.handle(text if isinstance(text, str) else "")
        return turn.result()
    except Exception:
        # A broken turn must still get an answer, never a crash.
        logger.exception("offline dialogue failed on a turn")
        try:
            kept = json.loads(json.dumps(dict(state or {})))
        except (TypeError, ValueError):
            kept = {}
        # Keep the conversation once, but a state that fails twice is dropped, so one
        # bad turn cannot trap the customer in apologies.
        failures = kept.get("failures", 0) if isinstance(kept.get("failures"), int) else 0
        kept = {} if failures >= 1 else {**kept, "failures": failures + 1}
        return DialogueResult(text=SORRY, state=kept)


class _Refused(Exception):
    def __init__(self, result: Mapping[str, Any]) -> None:
        self.code = str(result.get("error") or "error")
        self.message = str(result.get("message") or "")
        self.field = str(result.get("field") or "")
        super().__init__(self.code)


# ---------------------------------------------------------------------------
# One turn


class _Turn:
    def __init__(
        self,
        *,
        state: _State,
        now: datetime,
        business: BusinessInfo,
        call_tool: CallTool,
        caller_phone: str | None,
    ) -> None:
        self.s = state
        self.now = now
        self.biz = business
        self.tz = business.tz
        self.today = now.astimezone(self.tz).date()
        self.call_tool = call_tool
        self.caller = caller_phone
        self.out: list[str] = []
        self.outcome: str | None = None
        self.finished = False
        self.offer_count = OFFERS_ON_PHONE if caller_phone else OFFERS_IN_CHAT
        self.text = ""

    # --- plumbing -----------------------------------------------------------

    def say(self, *sentences: str) -> None:
        self.out.extend(say.sentence(s) for s in sentences if s and s.strip())

    def result(self) -> DialogueResult:
        text = " ".join(self.out) or say.sentence(say.CAPABILITIES)
        return DialogueResult(
            text=text, state=self.s.to_dict(), outcome=self.outcome, finished=self.finished
        )

    def tool(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        try:
            result = self.call_tool(name, copy.deepcopy(args))
        except Exception:
            # A failing tool is an answer ("nothing was booked"), not a crash.
            logger.exception("tool %s raised", name)
            return {"ok": False, "error": "server_error", "message": ""}
        if not isinstance(result, dict):
            return {"ok": False, "error": "server_error", "message": ""}
        return result

    def read(self, text: str) -> Utterance:
        return parse(
            text,
            now=self.now,
            tz=self.tz,
            service_names=[s.name for s in self.biz.services],
            staff_names=list(self.biz.staff),
            default_region=self.biz.region,
            expecting=EXPECTING.get(self.s.step or ""),
        )

    def local(self, iso: str) -> datetime:
        return datetime.fromisoformat(iso).astimezone(self.tz)

    def when(self, iso: str) -> str:
        return say.moment(self.local(iso))

    @property
    def contact_phone(self) -> str | None:
        return self.s.phone or self.caller

    # --- the turn -----------------------------------------------------------

    def handle(self, text: str) -> None:
        s = self.s
        s.turns += 1
        # The parser reads at most this much too; the cues below need no more.
        self.text = text[:MAX_TEXT]
        u = self.in_context(self.read(text))
        intents = u.intents
        if Intent.HUMAN in intents:
            self.hand_off()
            return
        if u.gibberish and not (s.step == "slot" and _SLOT_WORDS_RE.search(text)):
            self.not_understood(gibberish=True)
            return
        self.absorb(u)

        flow = self.flow_intent(u)
        answers = self.answers(u)
        questions_only = (
            answers
            and flow is None
            and not intents & {Intent.CORRECTION, Intent.YES, Intent.NO}
            and u.choice is None
            and not (s.step in ("name", "phone", "reference") and self.gave_contact(u))
        )
        if questions_only:
            self.say(*answers)
            s.misses = 0
            self.resume(after_answer=True, topic=u.service)
            return
        if answers:
            self.say(*answers)
        if (
            intents == {Intent.GREETING}
            and not self.has_details(u)
            and not self.gave_contact(u)
            and u.choice is None
        ):
            if s.flow is not None and s.step is not None:
                self.say("Hello again!")
                self.resume()
            else:
                self.greet()
            return

        if Intent.GOODBYE in intents and flow is None and not self.has_details(u):
            self.goodbye()
            return
        elsewhere = self.other_business()
        if elsewhere:
            self.say(f"I can only book with {self.biz.name}, not {elsewhere}.")
        if (
            flow is None
            and not self.has_details(u)
            and not self.gave_contact(u)
            and u.choice is None
            and not intents & {Intent.YES, Intent.NO}
            and any(pattern.search(text) for pattern, _ in _OUT_OF_SCOPE)
        ):
            self.not_understood(gibberish=False)
            return
        if flow is not None:
            self.dispatch(flow, u)
        elif s.flow is not None:
            self.continue_flow(u)
        else:
            self.no_flow(u)

    def other_business(self) -> str | None:
        """The name of another business the message asks about ("book me at Happy Teeth")."""
        own = {w.casefold() for w in re.findall(r"[\w']+", self.biz.name)}
        for m in _ELSEWHERE_RE.finditer(self.text):
            name = m.group("name").strip()
            words = {w.casefold() for w in re.findall(r"[\w']+", name)}
            if words and not words <= own | _BUSINESS_WORDS:
                return name
        return None

    def in_context(self, u: Utterance) -> Utterance:
        """Read short answers against what is being discussed."""
        s, w = self.s, self.s.want
        if (
            s.step == "slot"
            and u.choice is not None
            and u.choice > len(s.offers)
            and u.choice <= 12
            and u.exact_time is None
        ):
            # "Is 11 ok?" after three times were listed is a time, not option 11.
            hour = u.choice + 12 if u.choice <= 7 else u.choice
            u = replace(u, choice=None, exact_time=time(hour))
        if (
            s.flow in (BOOK, RESCHEDULE, WAITLIST)
            and w.first
            and u.dates is not None
            and u.dates.is_single_day
            and not _EXPLICIT_DAY_RE.search(self.text)
        ):
            # "Monday", said while looking at next week, is next week's Monday.
            first = date.fromisoformat(w.first)
            last = date.fromisoformat(w.last or w.first)
            said = u.dates.start
            if not first <= said <= last:
                same = [
                    first + timedelta(days=n)
                    for n in range((last - first).days + 1)
                    if (first + timedelta(days=n)).weekday() == said.weekday()
                ]
                if len(same) == 1 and same[0] >= self.today:
                    u = replace(u, dates=DateSpec.on(same[0]))
        return u

    def gave_contact(self, u: Utterance) -> bool:
        return any(x is not None for x in (u.name, u.phone, u.email, u.reference))

    def engaged(self, u: Utterance) -> bool:
        """Whether the message said anything to the point (else: "Sorry, I didn't catch that")."""
        small_talk = {Intent.GREETING, Intent.THANKS, Intent.GOODBYE}
        return self.has_details(u) or self.gave_contact(u) or bool(u.intents - small_talk)

    def has_details(self, u: Utterance) -> bool:
        return bool(
            u.service
            or u.service_candidates
            or u.staff
            or u.dates
            or u.exact_time
            or u.time_window
            or u.earliest
        )

    def absorb(self, u: Utterance) -> None:
        """Contact details count whenever they are said."""
        s = self.s
        if u.name:
            s.name = u.name
        if u.phone:
            if s.flow in MANAGE_FLOWS and s.appointment is None:
                s.appointments = []
            s.phone = u.phone
        if u.email:
            s.email = u.email
        if u.reference and u.reference != s.reference:
            s.reference = u.reference
            if s.flow in MANAGE_FLOWS:
                s.appointment, s.appointments = None, []
                s.forget_times()

    def flow_intent(self, u: Utterance) -> str | None:
        i = u.intents
        s = self.s
        if Intent.CANCEL in i:
            return CANCEL
        if Intent.RESCHEDULE in i:
            # Mid-booking, "move it to Friday" corrects the booking being made.
            if (
                s.flow == BOOK
                and s.step not in (None, "service")
                and not u.reference
                and (u.dates or u.exact_time or u.time_window)
                and not s.booked
            ):
                return None
            return RESCHEDULE
        if s.flow != BOOK and s.recent is not None and _MOVE_IT_RE.search(self.text):
            return RESCHEDULE
        if Intent.WAITLIST in i:
            return WAITLIST
        if Intent.FIND_MY_APPOINTMENTS in i:
            return FIND
        if Intent.BOOK in i or Intent.AVAILABILITY in i:
            return BOOK
        return None

    def dispatch(self, flow: str, u: Utterance) -> None:
        s = self.s
        if flow == CANCEL and s.flow == BOOK and not self.means_existing(u):
            self.say("Okay, I won't book anything.")
            s.end_flow()
            self.say("Is there anything else I can help with?")
            return
        if flow == BOOK:
            new_one = bool(re.search(r"\b(?:new|another)\b", self.text, re.I))
            if s.flow == RESCHEDULE and s.appointment is not None and not new_one:
                self.manage(u, fresh=False)
                return
            if s.flow == WAITLIST and Intent.AVAILABILITY not in u.intents:
                self.waitlist(u, fresh=False)
                return
            self.book(u, fresh=s.flow != BOOK)
            return
        if flow == WAITLIST:
            self.waitlist(u, fresh=s.flow != WAITLIST)
            return
        fresh = s.flow != flow or (u.reference is not None and s.appointment is not None)
        s.flow = flow
        self.manage(u, fresh=fresh)

    def means_existing(self, u: Utterance) -> bool:
        # At "Shall I book ...?", "cancel my booking" means the one being made.
        if u.reference:
            return True
        return self.s.step != "confirm" and _EXISTING_RE.search(self.text) is not None

    def continue_flow(self, u: Utterance) -> None:
        s = self.s
        if s.flow == BOOK:
            self.book(u, fresh=False)
        elif s.flow == WAITLIST:
            self.waitlist(u, fresh=False)
        else:
            self.manage(u, fresh=False)

    # --- outside any flow ---------------------------------------------------

    def no_flow(self, u: Utterance) -> None:
        s = self.s
        i = u.intents
        if Intent.GOODBYE in i or (s.step == "more" and Intent.NO in i and not self.has_details(u)):
            self.goodbye()
            return
        if s.step == "suggest" and Intent.YES in i:
            self.book(u, fresh=True, service=s.suggested)
            return
        if self.has_details(u) and Intent.NO not in i:
            self.book(u, fresh=True)
            return
        if u.reference:
            s.step = "ref_what"
            self.say(
                f"Thanks. Would you like to cancel booking {u.reference}, move it, "
                "or check when it is?"
            )
            return
        if Intent.THANKS in i:
            s.step = "more"
            self.say("You're welcome! Is there anything else I can help with?")
            return
        if Intent.YES in i and s.step in ("more", "suggest"):
            s.step = None
            self.say("Great. What would you like to do? " + say.CAPABILITIES)
            return
        if Intent.NO in i and s.step == "suggest":
            s.step = "more"
            self.say("No problem. Is there anything else I can help with?")
            return
        if Intent.GREETING in i:
            self.greet()
            return
        if u.name or u.phone or u.email:
            who = f", {u.name}" if u.name else ""
            self.say(f"Thanks{who}. What can I do for you today?")
            return
        if i & {Intent.YES, Intent.NO}:
            s.step = None
            self.say("Sorry, I'm not sure what that answers. What would you like to do?",
                     say.CAPABILITIES)
            return
        self.not_understood(gibberish=False)

    def greet(self) -> None:
        self.s.step = None
        self.say(
            f"Hello! I'm the booking assistant for {self.biz.name}.",
            "I can book, move or cancel appointments and answer questions. What can I do for you?",
        )

    def goodbye(self) -> None:
        s = self.s
        if s.flow == BOOK and s.chosen is not None:
            self.say("Okay, I haven't booked anything.")
        s.end_flow(step=None)
        self.say(f"Thank you for contacting {self.biz.name}. Goodbye!")
        self.finished = True

    def hand_off(self) -> None:
        self.s.end_flow(step=None)
        self.say(f"Of course. I'm passing you to a member of the team at {self.biz.name}.")
        if self.biz.phone:
            self.say(f"You can also call them on {self.biz.phone}.")
        self.outcome = "handed_off"
        self.finished = True

    def not_understood(self, *, gibberish: bool) -> None:
        s = self.s
        s.misses += 1
        matched = [reply for pattern, reply in _OUT_OF_SCOPE if pattern.search(self.text)]
        if matched:
            self.say(*matched)
            if self.biz.phone:
                self.say(f"The team can help on {self.biz.phone}.")
        elif gibberish:
            self.say("Sorry, I didn't understand that.")
        else:
            self.say("Sorry, I can't help with that here.")
        if s.flow is not None and s.step is not None:
            self.resume()
        else:
            self.say(say.CAPABILITIES)
        if s.misses > MISSES_BEFORE_HELP:
            self.say("You can also ask to talk to a person.")

    # --- questions ------------------------------------------------------------

    def answers(self, u: Utterance) -> list[str]:
        out: list[str] = []
        i = u.intents
        named = [self.biz.service(n) for n in (u.service_candidates or ())]
        named_services = [x for x in named if x is not None]
        if u.service:
            first = self.biz.service(u.service)
            named_services = [first] if first else named_services
        if Intent.PRICE in i:
            out.append(self.price_answer(named_services))
        if Intent.SERVICES in i and Intent.PRICE not in i:
            out.append(self.services_answer(named_services))
        if Intent.HOURS in i:
            out.append(self.hours_answer(u.dates))
        if Intent.LOCATION in i:
            if self.biz.address:
                out.append(f"We're at {self.biz.address}.")
            else:
                contact = (
                    f" Please call us on {self.biz.phone} for directions." if self.biz.phone else ""
                )
                out.append(f"Sorry, I don't have our address to hand.{contact}")
        if Intent.POLICY in i:
            out.append(self.policy_answer())
        return out

    def price_answer(self, services: list[ServiceInfo]) -> str:
        if not services and self.s.want.service:
            current = self.biz.service(self.s.want.service)
            services = [current] if current else []
        if len(services) == 1:
            service = services[0]
            price = say.money(service.price, self.biz.currency)
            if not price:
                return f"I don't have a price for {service.name}; the team can tell you."
            return (
                f"{service.name} costs {price} and takes {say.duration(service.duration_minutes)}."
            )
        listed = services or list(self.biz.services)
        if not listed:
            return "Sorry, I don't have a price list to hand."
        items = [
            f"{s.name} {say.money(s.price, self.biz.currency)}".strip()
            for s in listed[:MAX_LISTED_SERVICES]
        ]
        more = " and more" if len(listed) > MAX_LISTED_SERVICES else ""
        return f"Our prices: {say.joined(items)}{more}."

    def services_answer(self, services: list[ServiceInfo]) -> str:
        if len(services) == 1:
            service = services[0]
            price = say.money(service.price, self.biz.currency)
            cost = f" and costs {price}" if price else ""
            return (
                f"Yes, we offer {service.name}: it takes "
                f"{say.duration(service.duration_minutes)}{cost}."
            )
        names = [s.name for s in self.biz.services]
        if not names:
            return "Sorry, I don't have our list of services to hand."
        more = " and more" if len(names) > MAX_LISTED_SERVICES else ""
        return f"We offer {say.joined(names[:MAX_LISTED_SERVICES])}{more}."

    def hours_answer(self, dates: DateSpec | None) -> str:
        biz = self.biz
        if dates is not None and dates.is_single_day:
            d = dates.start
            closure = self.closure_on(d)
            if closure is not None:
                reason = f" ({closure})" if closure else ""
                return f"We're closed on {say.day(d)}{reason}."
            if biz.hours_known:
                spans = biz.hours.get(say.DAY_KEYS[d.weekday()], ())
                if not spans:
                    return (
                        f"Sorry, we're closed on {say.day(d)}; we don't open on "
                        f"{say.DAY_NAMES[d.weekday()]}s."
                    )
                return f"Yes, on {say.day(d)} we're open {say.hours_of_day(spans)}."
        summary = say.week_hours(biz.hours) if biz.hours_known else ""
        return summary or "Sorry, I don't have our opening hours to hand."

    def policy_answer(self) -> str:
        biz = self.biz
        parts = []
        if biz.cancellation_notice_minutes:
            notice = _minutes_phrase(biz.cancellation_notice_minutes)
            parts.append(
                f"You can cancel or move an appointment here up to {notice} before it "
                "starts; after that, please call us."
            )
        else:
            parts.append("You can cancel or move an appointment here any time before it starts.")
        if biz.max_days_ahead:
            parts.append(f"Bookings open up to {biz.max_days_ahead} days ahead.")
        return " ".join(parts)

    def closure_on(self, d: date) -> str | None:
        """The reason ("" if none given) when the business is closed all of ``d``."""
        start = datetime.combine(d, time(), self.tz)
        end = datetime.combine(d + timedelta(days=1), time(), self.tz)
        for closure in self.biz.closures:
            try:
                c_start = datetime.fromisoformat(str(closure["start"]))
                c_end = datetime.fromisoformat(str(closure["end"]))
            except (KeyError, ValueError):
                continue
            if c_start <= start and c_end >= end:
                return str(closure.get("reason") or "")
        return None

    def resume(self, *, after_answer: bool = False, topic: str | None = None) -> None:
        """Ask again for what the pending flow is waiting for."""
        s = self.s
        if s.flow is None:
            if after_answer:
                if topic and self.biz.service(topic):
                    s.step, s.suggested = "suggest", topic
                    self.say(f"Would you like to book {topic}?")
                else:
                    s.step, s.suggested = "suggest", None
                    self.say("Would you like to book an appointment?")
            return
        if s.flow == BOOK:
            self.advance_book(repeat=True)
        elif s.flow == WAITLIST:
            self.advance_waitlist()
        else:
            self.advance_manage()

    # --- booking -------------------------------------------------------------

    def book(self, u: Utterance, *, fresh: bool, service: str | None = None) -> None:
        s = self.s
        if fresh:
            s.flow, s.step = BOOK, None
            s.want = _Want(service=service)
            s.forget_times()
            s.service_choices = []
            s.reference, s.appointment, s.appointments = None, None, []
            s.misses = 0
        if s.step == "service" and s.service_choices and u.choice is not None and not u.service:
            index = len(s.service_choices) - 1 if u.choice == -1 else u.choice - 1
            if 0 <= index < len(s.service_choices):
                s.want.service = s.service_choices[index]
                s.service_choices = []
        picked = False
        if s.step == "slot" and s.offers:
            pick = self.pick_offer(u)
            if pick is not None:
                s.chosen, picked = pick, True
        held = s.chosen if s.step == "confirm" else None
        changed = False if picked else self.apply_want(u)
        if changed and held is not None and not (u.dates or u.exact_time or u.time_window):
            # "Actually with Ana": keep the time already agreed if it still works.
            at = self.local(held["start"])
            s.want.first = s.want.last = at.date().isoformat()
            s.want.at, s.want.window = f"{at:%H:%M}", None
        if self.staff_request_cleared(u):
            changed = True
        if not fresh and not picked and not changed and self.handle_step_reply(u):
            return
        if changed or picked or fresh or self.gave_contact(u):
            s.misses = 0
        self.advance_book()

    def handle_step_reply(self, u: Utterance) -> bool:
        """Yes/no and other short answers to the question just asked; True when handled."""
        s = self.s
        i = u.intents
        yes, no = Intent.YES in i and Intent.NO not in i, Intent.NO in i
        if s.step == "slot" and s.offers:
            if u.choice is not None:
                self.say(f"Please choose a number from 1 to {len(s.offers)}.")
                self.ask_pick()
                return True
            if _LATER_RE.search(self.text) or _EARLIER_RE.search(self.text):
                self.shift_window(later=bool(_LATER_RE.search(self.text)))
                return True
            if no or _OTHER_TIMES_RE.search(self.text):
                s.forget_times()
                s.step = "when"
                self.say("No problem. What other day or time would suit you?")
                return True
            if yes and len(s.offers) == 1:
                s.chosen = s.offers[0]
                self.advance_book()
                return True
            if yes:
                waitlist = ", or say waitlist" if s.waitlist_offered else ""
                self.say(f"Which one would you like? Just say the number{waitlist}.")
                return True
        if s.step == "confirm" and s.chosen is not None:
            if yes:
                self.create()
                return True
            if no:
                s.forget_times()
                s.step = "when"
                self.say("Okay, I haven't booked it. What other day or time would suit you?")
                return True
        if s.step == "waitlist_offer":
            if yes:
                self.waitlist(u, fresh=True)
                return True
            if no:
                s.forget_times()
                s.step = "when"
                self.say("Okay. What other day or time would suit you?")
                return True
        asked = ("when", "service", "name", "phone", "slot", "confirm")
        if s.step in asked and not self.engaged(u):
            if Intent.THANKS in i:
                self.say("You're welcome.")
            elif Intent.GOODBYE in i:
                self.goodbye()
                return True
            else:
                s.misses += 1
                self.say("Sorry, I didn't catch that.")
                if s.misses > MISSES_BEFORE_HELP:
                    self.say("You can also ask to talk to a person.")
        return False

    def advance_book(self, *, repeat: bool = False) -> None:
        s, w = self.s, self.s.want
        if not w.service:
            if len(self.biz.services) == 1:
                w.service = self.biz.services[0].name
            else:
                self.ask_service()
                return
        if s.chosen is None:
            if s.offers:
                self.ask_pick()
                return
            if not w.has_when:
                lead = "" if repeat or s.step == "when" else f"Sure, {w.service}. "
                s.step = "when"
                self.say(lead + "What day and time would suit you?")
                return
            if not self.search():
                return
        if not s.name:
            s.step = "name"
            self.say("What name should I put the booking under?")
            return
        if not self.contact_phone:
            s.step = "phone"
            self.say("And what's the best phone number to reach you on?")
            return
        s.step = "confirm"
        self.say(self.confirm_booking_text())

    def ask_service(self) -> None:
        s = self.s
        if s.service_choices:
            s.step = "service"
            self.say(f"Which would you like: {say.joined(s.service_choices, 'or')}?")
            return
        names = [x.name for x in self.biz.services]
        if not names:
            self.say("Sorry, there are no services to book online at the moment.")
            s.end_flow(step=None)
            return
        shown = say.joined(names[:MAX_LISTED_SERVICES], "or")
        if s.flow == WAITLIST:
            lead = "" if s.step == "service" else "Sure, I can put you on the waitlist. "
            s.step = "service"
            self.say(f"{lead}Which service is it for: {shown}?")
            return
        if s.step != "service":
            self.say(f"Happy to help you book with {self.biz.name}.")
        s.step = "service"
        self.say(f"Which service would you like: {shown}?")

    def ask_pick(self) -> None:
        s = self.s
        s.step = "slot"
        listed = say.numbered([self.when(o["start"]) for o in s.offers])
        waitlist = ", or the waitlist" if s.waitlist_offered else ""
        self.say(f"The times I can offer are {listed}. Which would you like{waitlist}?")

    def confirm_booking_text(self) -> str:
        s = self.s
        slot = s.chosen
        assert slot is not None
        staff = f" with {slot['staff']}" if slot.get("staff") and len(self.biz.staff) > 1 else ""
        if s.phone:
            contact = f"{s.name}, phone ending {say.phone_tail(s.phone)}"
        else:
            contact = f"{s.name}, at the number you're calling from"
        return (
            f"Shall I book your {s.want.service}{staff} on {self.when(slot['start'])} "
            f"for {contact}? (yes/no)"
        )

    def pick_offer(self, u: Utterance) -> dict[str, Any] | None:
        offers = self.s.offers
        if u.choice is not None:
            index = len(offers) - 1 if u.choice == -1 else u.choice - 1
            return offers[index] if 0 <= index < len(offers) else None
        locals_ = [(o, self.local(o["start"])) for o in offers]
        if u.exact_time is not None:
            hits = [
                o
                for o, at in locals_
                if at.time() == u.exact_time and (u.dates is None or at.date() in u.dates)
            ]
            return hits[0] if hits else None
        hits = [
            o
            for o, at in locals_
            if (u.dates is None or at.date() in u.dates)
            and (u.time_window is None or u.time_window[0] <= at.time() < u.time_window[1])
        ]
        if (u.dates or u.time_window) and len(hits) == 1 and not u.service:
            return hits[0]
        return None

    def apply_want(self, u: Utterance, *, services: bool = True) -> bool:
        """Fold what the message asks for into the request; True when it changed."""
        s, w = self.s, self.s.want
        before = asdict(w)
        if services:
            if u.service and self.biz.service(u.service):
                w.service = self.biz.service(u.service).name  # type: ignore[union-attr]
                s.service_choices = []
            elif len(u.service_candidates) > 1 and w.service not in u.service_candidates:
                s.service_choices = list(u.service_candidates)
                w.service = None
        if u.staff:
            w.staff = u.staff
        if u.dates is not None:
            w.first, w.last = u.dates.start.isoformat(), u.dates.end.isoformat()
            if not (u.exact_time or u.time_window or u.earliest):
                w.earliest = False
        if u.exact_time is not None:
            w.at, w.window = f"{u.exact_time:%H:%M}", None
        elif u.time_window is not None:
            w.at, w.window = None, [f"{u.time_window[0]:%H:%M}", f"{u.time_window[1]:%H:%M}"]
        if u.earliest:
            w.earliest = True
        changed = asdict(w) != before or (services and bool(s.service_choices) and not w.service)
        if changed:
            s.forget_times()
        return changed

    def staff_request_cleared(self, u: Utterance) -> bool:
        w = self.s.want
        if w.staff and not u.staff and _ANYONE_RE.search(self.text):
            w.staff = None
            self.s.forget_times()
            return True
        return False

    def shift_window(self, *, later: bool) -> None:
        """"Anything later?": the same days, after the last (before the first) time offered."""
        s, w = self.s, self.s.want
        kept_want, kept_offers = copy.deepcopy(w), list(s.offers)
        times = sorted(self.local(o["start"]) for o in s.offers)
        bounds = w.bounds() or (DAY_START, DAY_END)
        if later:
            edge = times[-1] + timedelta(minutes=1)
            w.window = [f"{edge:%H:%M}", f"{max(bounds[1], DAY_END):%H:%M}"]
        else:
            w.window = [f"{min(bounds[0], DAY_START):%H:%M}", f"{times[0]:%H:%M}"]
        w.first = w.first or times[0].date().isoformat()
        w.last = w.last or times[-1].date().isoformat()
        w.at = None
        s.forget_times()
        first, last = self.span()
        try:
            found = self.collect(w.service or "", first, last, w.bounds(), w.staff)
        except _Refused as refusal:
            s.want, s.offers = kept_want, kept_offers
            self.search_refused(refusal)
            return
        if found:
            s.offers = self.spread(found)
            self.offer(lead=f"Here's what I have {self.describe(first, last)}")
            return
        s.want, s.offers = kept_want, kept_offers
        which = "later" if later else "earlier"
        self.say(f"Sorry, there's nothing {which} {self.describe(*self.span(), at=False)}.")
        self.ask_pick()

    def create(self) -> None:
        s, w = self.s, self.s.want
        slot = s.chosen
        assert slot is not None and s.name and self.contact_phone
        args: dict[str, Any] = {
            "service": w.service,
            "start": slot["start"],
            "name": s.name,
            "phone": self.contact_phone,
        }
        if slot.get("staff_id") is not None:
            args["staff_id"] = slot["staff_id"]
        if s.email:
            args["email"] = s.email
        result = self.tool("create_appointment", args)
        if result.get("ok"):
            appointment = self.appointment_of(result, fallback_service=w.service or "")
            s.booked = [*s.booked, appointment][-5:]
            s.recent = appointment
            self.outcome = "booked"
            staff = f" with {appointment['staff']}" if appointment.get("staff") else ""
            s.end_flow()
            self.say(
                f"You're booked: {appointment['service']}{staff} on "
                f"{self.when(appointment['start'])}.",
                f"Your reference is {appointment['reference']}; you'll need it to change or "
                "cancel the booking.",
                "Is there anything else I can help with?",
            )
            return
        self.booking_refused(_Refused(result), slot)

    def booking_refused(self, refusal: _Refused, slot: Mapping[str, Any]) -> None:
        s = self.s
        code = refusal.code
        if code == "invalid_input" and refusal.field == "phone":
            s.phone = None
            s.step = "phone"
            self.say("That phone number doesn't look right. What number can we reach you on?")
            return
        if code == "invalid_input" and refusal.field == "name":
            s.name = None
            s.step = "name"
            self.say("Sorry, I couldn't use that name. What name should I put the booking under?")
            return
        if code in ("plan_limit_reached", "booking_paused", "feature_not_in_plan"):
            s.end_flow()
            call = f" Please call us on {self.biz.phone}." if self.biz.phone else ""
            self.say(f"I'm sorry, we can't take bookings online at the moment.{call}")
            return
        if code in ("busy", "server_error"):
            s.step = "confirm"
            self.say("Sorry, something went wrong on our side and nothing was booked.")
            self.say("Shall I try again? (yes/no)")
            return
        if code == "slot_taken":
            self.say(f"Sorry, {self.when(slot['start'])} has just been taken.")
        else:
            self.say(refusal.message or "Sorry, that time can't be booked.")
        s.forget_times()
        if self.search(skip={slot["start"]}, lead="Here are other times"):
            self.advance_book()

    # --- finding times --------------------------------------------------------

    def search(self, *, skip: set[str] | None = None, lead: str | None = None) -> bool:
        """Look for times matching the request; True when one is chosen, else it has asked."""
        s, w = self.s, self.s.want
        service = w.service or ""
        skip = skip or set()
        staff = self.usable_staff(service)
        first, last = self.span()
        at, bounds = w.time_at(), w.bounds()
        desc = self.describe(first, last)
        horizon = self.biz.max_days_ahead
        if horizon and first > self.today + timedelta(days=horizon):
            s.forget_times()
            s.step = "when"
            self.say(
                f"Sorry, we take bookings up to {horizon} days ahead, so {say.day(first)} is "
                "too far out. What earlier day would suit you?"
            )
            return False
        try:
            if at is not None:
                exact, nearest = self.find_exact(service, first, last, at, staff)
                exact = [x for x in exact if x["start"] not in skip]
                if exact:
                    s.chosen = exact[0]
                    with_staff = (
                        f" with {exact[0]['staff']}"
                        if exact[0].get("staff") and len(self.biz.staff) > 1
                        else ""
                    )
                    self.say(f"Good news: {self.when(exact[0]['start'])} is free{with_staff}.")
                    return True
                nearest = [x for x in nearest if x["start"] not in skip]
                if nearest:
                    s.offers = self.closest(nearest, at)
                    self.say(
                        f"Sorry, {say.clock(at)} isn't free {self.describe(first, last, at=False)}."
                    )
                    self.offer(lead="The nearest times are")
                    return False
                found = []
            else:
                found = [
                    x
                    for x in self.collect(service, first, last, bounds, staff)
                    if x["start"] not in skip
                ]
            if found:
                s.offers = self.spread(found)
                if lead is None and w.earliest and not w.first and not bounds:
                    lead = "Here are the earliest times I have"
                self.offer(lead=lead or f"Here's what I have {desc}")
                return False
            alternatives = [
                x for x in self.alternatives(service, first, last, bounds, at, staff)
                if x["start"] not in skip
            ]
        except _Refused as refusal:
            self.search_refused(refusal)
            return False
        closed = self.closed_on(first) if first == last else None
        if closed is not None:
            self.say(f"Sorry, we're closed on {say.day(first)}{closed}.")
        else:
            self.say(f"Sorry, nothing is free {desc}.")
        # Waiting for a day the business is closed would be waiting forever.
        waitlist = self.biz.waitlist and s.flow == BOOK and closed is None
        if alternatives:
            s.offers = self.spread(alternatives)
            if waitlist:
                s.waitlist_offered = True
                self.say(
                    "I can put you on the waitlist in case something opens up then, "
                    "or you can take one of the nearest openings."
                )
            self.offer(lead="The nearest openings are")
            return False
        if waitlist:
            s.step = "waitlist_offer"
            self.say(
                f"I couldn't find anything in the {ALTERNATIVE_DAYS} days after that either. "
                "Would you like me to put you on the waitlist? (yes/no)"
            )
            return False
        s.step = "when"
        self.say("Would you like to try other dates?")
        return False

    def closed_on(self, d: date) -> str | None:
        """" (reason)" or "" when the business is closed all day on ``d``; None when open."""
        reason = self.closure_on(d)
        if reason is not None:
            return f" ({reason})" if reason else ""
        if self.biz.hours_known and not self.open_spans(d, None):
            return ""
        return None

    def offer(self, *, lead: str) -> None:
        s = self.s
        s.step = "slot"
        listed = say.numbered([self.when(o["start"]) for o in s.offers])
        waitlist = ", or the waitlist" if s.waitlist_offered else ""
        self.say(f"{lead}: {listed}.", f"Which would you like{waitlist}?")

    def search_refused(self, refusal: _Refused) -> None:
        s = self.s
        if refusal.code == "invalid_input" and refusal.field == "staff":
            s.want.staff = None
            self.say("Sorry, I couldn't find that staff member.")
            if s.flow == BOOK:
                self.advance_book()
            else:
                self.advance_manage()
            return
        if refusal.code in ("busy", "server_error", "error"):
            self.say("Sorry, I couldn't check the diary just now. Please try again in a moment.")
        else:
            self.say(refusal.message or "Sorry, I couldn't look that up.")
        s.step = "when"
        self.say("What other day or time would suit you?")

    def usable_staff(self, service: str) -> str | None:
        w = self.s.want
        info = self.biz.service(service)
        if w.staff and info is not None and info.staff and w.staff not in info.staff:
            self.say(
                f"{w.staff} doesn't do {service}, so I'll look with "
                f"{say.joined(list(info.staff), 'or')}."
            )
            w.staff = None
        return w.staff

    def span(self) -> tuple[date, date]:
        w = self.s.want
        if w.first:
            first = max(date.fromisoformat(w.first), self.today)
            last = max(date.fromisoformat(w.last or w.first), first)
        else:
            first = self.today
            last = first + timedelta(days=13 if w.earliest else 6)
        return first, min(last, first + timedelta(days=30))

    def describe(self, first: date, last: date, *, at: bool = True) -> str:
        w = self.s.want
        text = say.days(first, last, self.today)
        if w.staff:
            text = f"with {w.staff} {text}"
        if at and w.at:
            text += f" at {say.clock(time.fromisoformat(w.at))}"
        bounds = w.bounds()
        if bounds:
            text += f" {say.window(bounds)}"
        return text

    def check(
        self,
        service: str,
        first: date,
        last: date | None = None,
        *,
        part: str | None = None,
        at: time | None = None,
        staff: str | None = None,
    ) -> list[dict[str, Any]]:
        args: dict[str, Any] = {"service": service, "date": first.isoformat()}
        if at is not None:
            args["time"] = f"{at:%H:%M}"
        elif last is not None and last != first:
            args["end_date"] = last.isoformat()
        if part:
            args["part_of_day"] = part
        if staff:
            args["staff"] = staff
        result = self.tool("check_availability", args)
        if not result.get("ok"):
            raise _Refused(result)
        slots = []
        for raw in result.get("slots") or []:
            try:
                start = str(raw["start"])
                self.local(start)
            except (KeyError, TypeError, ValueError):
                continue
            staff_id = raw.get("staff_id")
            slots.append(
                {
                    "start": start,
                    "end": str(raw.get("end") or ""),
                    "staff": str(raw.get("staff") or ""),
                    "staff_id": staff_id if isinstance(staff_id, int) else None,
                }
            )
        return slots

    def open_spans(self, d: date, bounds: tuple[time, time] | None) -> list[tuple[time, time]]:
        """The business's open hours on ``d`` within ``bounds`` ([] when closed)."""
        if self.closure_on(d) is not None:
            return []
        if self.biz.hours_known:
            spans = list(self.biz.hours.get(say.DAY_KEYS[d.weekday()], ()))
        else:
            spans = [(DAY_START, DAY_END)]
        if bounds is None:
            return spans
        clipped = []
        for a, b in spans:
            lo, hi = max(a, bounds[0]), min(b, bounds[1])
            if lo < hi:
                clipped.append((lo, hi))
        return clipped

    def probe_times(self, spans: list[tuple[time, time]], service: str, count: int) -> list[time]:
        """``count`` start times spread over the open spans, on the half hour where possible."""
        info = self.biz.service(service)
        length = info.duration_minutes if info else 0
        usable = []
        for a, b in spans:
            start = a.hour * 60 + a.minute
            end = max(start, b.hour * 60 + b.minute - length)
            usable.append((start, end))
        total = sum(end - start + 1 for start, end in usable)
        if total <= 0:
            return []
        picks: list[time] = []
        for k in range(count):
            offset = total * k // count
            for start, end in usable:
                size = end - start + 1
                if offset < size:
                    minute = start + offset
                    rounded = minute - minute % 30
                    for option in (rounded, minute):
                        candidate = time(option // 60, option % 60)
                        if option >= start and candidate not in picks:
                            picks.append(candidate)
                            break
                    break
                offset -= size
        return picks

    def find_exact(
        self, service: str, first: date, last: date, at: time, staff: str | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(slots at exactly ``at``, the nearest ones on the first day with any)."""
        nearest: list[dict[str, Any]] = []
        day = first
        for _ in range(PROBE_DAYS):
            if day > last:
                break
            if self.open_spans(day, None):
                slots = self.check(service, day, at=at, staff=staff)
                exact = [x for x in slots if self.local(x["start"]).time() == at]
                if exact:
                    return exact, nearest
                if slots and not nearest:
                    nearest = slots
            day += timedelta(days=1)
        return [], nearest

    def collect(
        self,
        service: str,
        first: date,
        last: date,
        bounds: tuple[time, time] | None,
        staff: str | None,
    ) -> list[dict[str, Any]]:
        """Free slots on [first, last] within ``bounds``, a spread of them per day."""
        part = next((name for name, b in PARTS_OF_DAY.items() if b == bounds), None)
        if first != last and (bounds is None or part is not None):
            # The tool lists each day's first few slots: one call covers the range.
            return self.within(self.check(service, first, last, part=part, staff=staff), bounds)
        found: list[dict[str, Any]] = []
        days_with_slots = 0
        day = first
        probes_per_day = self.offer_count if first == last else 1
        for _ in range(PROBE_DAYS):
            if day > last or days_with_slots >= self.offer_count:
                break
            spans = self.open_spans(day, bounds)
            times = self.probe_times(spans, service, probes_per_day)
            seen_today = False
            for probe in times:
                for slot in self.within(self.check(service, day, at=probe, staff=staff), bounds):
                    if self.local(slot["start"]).date() == day and slot not in found:
                        found.append(slot)
                        seen_today = True
            days_with_slots += seen_today
            day += timedelta(days=1)
        return sorted(found, key=lambda x: self.local(x["start"]))

    def within(
        self, slots: list[dict[str, Any]], bounds: tuple[time, time] | None
    ) -> list[dict[str, Any]]:
        if bounds is None:
            return slots
        return [x for x in slots if bounds[0] <= self.local(x["start"]).time() < bounds[1]]

    def alternatives(
        self,
        service: str,
        first: date,
        last: date,
        bounds: tuple[time, time] | None,
        at: time | None,
        staff: str | None,
    ) -> list[dict[str, Any]]:
        if bounds is not None:
            # The times nearest to the asked-for part of the day, one per day.
            target = _middle(bounds)
            near: list[dict[str, Any]] = []
            day = first
            for _ in range(PROBE_DAYS):
                if day > last or len(near) >= self.offer_count:
                    break
                if self.open_spans(day, None):
                    slots = self.check(service, day, at=target, staff=staff)
                    ranked = self.closest(slots, target, count=3 if first == last else 1)
                    near.extend(x for x in ranked if x not in near)
                day += timedelta(days=1)
            if near:
                return near
        if at is not None:
            same_days = self.collect(service, first, last, None, staff)
            if same_days:
                return same_days
        after = last + timedelta(days=1)
        return self.check(service, after, after + timedelta(days=ALTERNATIVE_DAYS - 1), staff=staff)

    def spread(self, slots: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """At most ``offer_count`` slots: one a day over several days, spread over one day."""
        ordered: list[dict[str, Any]] = []
        for slot in sorted(slots, key=lambda x: self.local(x["start"])):
            if all(slot["start"] != o["start"] for o in ordered):
                ordered.append(slot)
        k = self.offer_count
        if len(ordered) <= k:
            return ordered
        by_day: dict[date, list[dict[str, Any]]] = {}
        for slot in ordered:
            by_day.setdefault(self.local(slot["start"]).date(), []).append(slot)
        if len(by_day) == 1:
            n = len(ordered)
            picks = sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})
            return [ordered[i] for i in picks]
        chosen: list[dict[str, Any]] = []
        depth = 0
        while len(chosen) < k:
            added = False
            for day_slots in by_day.values():
                if depth < len(day_slots) and len(chosen) < k:
                    chosen.append(day_slots[depth])
                    added = True
            if not added:
                break
            depth += 1
        return sorted(chosen, key=lambda x: self.local(x["start"]))

    def closest(
        self, slots: list[dict[str, Any]], at: time, *, count: int = 3
    ) -> list[dict[str, Any]]:
        def distance(slot: dict[str, Any]) -> int:
            t = self.local(slot["start"]).time()
            return abs((t.hour * 60 + t.minute) - (at.hour * 60 + at.minute))

        ranked = sorted(slots, key=distance)
        wanted = min(self.offer_count, count)
        picked: list[dict[str, Any]] = []
        if wanted > 1:
            # The nearest on each side first: "2:30 or 4:00", not three times before.
            before = [x for x in ranked if self.local(x["start"]).time() < at]
            after = [x for x in ranked if self.local(x["start"]).time() > at]
            picked = [side[0] for side in (before, after) if side]
        picked += [x for x in ranked if x not in picked]
        return sorted(picked[:wanted], key=lambda x: self.local(x["start"]))

    # --- waitlist -------------------------------------------------------------

    def waitlist(self, u: Utterance, *, fresh: bool) -> None:
        s = self.s
        if not self.biz.waitlist:
            self.say(f"Sorry, {self.biz.name} doesn't keep a waitlist.")
            if s.flow == BOOK and s.offers:
                self.ask_pick()
            elif s.flow == BOOK:
                s.forget_times()
                s.step = "when"
                self.say("Would you like to try another day or time?")
            else:
                self.book(u, fresh=True)
            return
        if fresh:
            keep = s.want if s.flow == BOOK else _Want()
            s.end_flow(step=None)
            s.flow, s.want = WAITLIST, keep
        self.apply_want(u)
        self.advance_waitlist()

    def advance_waitlist(self) -> None:
        s, w = self.s, self.s.want
        if not w.service:
            if len(self.biz.services) == 1:
                w.service = self.biz.services[0].name
            else:
                self.ask_service()
                return
        if not w.first and not w.at and not w.window:
            s.step = "when"
            self.say("Which day or days would you like me to watch for you?")
            return
        if not s.name:
            s.step = "name"
            self.say("What name should I put on the waitlist?")
            return
        if not self.contact_phone:
            s.step = "phone"
            self.say("And what phone number should we contact you on when something opens up?")
            return
        first, last = self.span()
        args: dict[str, Any] = {
            "service": w.service,
            "date": first.isoformat(),
            "end_date": last.isoformat(),
            "name": s.name,
            "phone": self.contact_phone,
        }
        part = self.part_of_day()
        if part:
            args["part_of_day"] = part
        if w.staff:
            args["staff"] = w.staff
        if s.email:
            args["email"] = s.email
        desc = self.describe(first, last)
        result = self.tool("join_waitlist", args)
        if result.get("ok"):
            s.end_flow()
            self.outcome = "waitlisted"
            where = (
                f"the number ending {say.phone_tail(self.contact_phone)}"
                if s.phone
                else "the number you're calling from"
            )
            self.say(
                f"Done: you're on the waitlist for {w.service} {desc}.",
                f"We'll contact you on {where} if a slot opens up.",
                "Is there anything else I can help with?",
            )
            return
        refusal = _Refused(result)
        if refusal.code == "invalid_input" and refusal.field == "phone":
            s.phone, s.step = None, "phone"
            self.say("That phone number doesn't look right. What number should we contact you on?")
            return
        if refusal.code == "feature_not_in_plan":
            s.end_flow()
            self.say(f"Sorry, {self.biz.name} doesn't keep a waitlist.")
            return
        s.end_flow()
        self.say(refusal.message or "Sorry, I couldn't add you to the waitlist just now.")

    def part_of_day(self) -> str | None:
        w = self.s.want
        bounds = w.bounds()
        if bounds is None and w.at:
            at = time.fromisoformat(w.at)
            bounds = (at, at)
        if bounds is None:
            return None
        for name, (a, b) in PARTS_OF_DAY.items():
            if a <= bounds[0] and (bounds[1] <= b or bounds[0] == bounds[1] < b):
                return name
        return None

    # --- cancel, reschedule, look up ------------------------------------------

    def manage(self, u: Utterance, *, fresh: bool) -> None:
        s = self.s
        if fresh:
            flow = s.flow
            reference = u.reference or (s.reference if s.step == "ref_what" else None)
            s.end_flow(step=None)
            s.flow, s.reference = flow, reference
            s.misses = 0
            if flow in (CANCEL, RESCHEDULE) and reference is None and s.recent is not None:
                # "Cancel it" right after booking or looking it up: the one just talked about;
                # the confirmation question names it, so a "no" costs nothing.
                s.appointment = dict(s.recent)
            if flow == RESCHEDULE:
                self.apply_want(u, services=False)
            self.advance_manage()
            return
        if s.step == "appointment" and s.appointments:
            picked = self.pick_appointment(u)
            if picked is not None:
                s.appointment, s.appointments = picked, []
                self.advance_manage()
                return
        if s.flow == RESCHEDULE:
            if s.appointment is not None and s.step == "slot" and s.offers:
                pick = self.pick_offer(u)
                if pick is not None:
                    s.chosen = pick
                    self.advance_manage()
                    return
            # The new time may come before the booking is found; it is kept either way.
            if self.apply_want(u, services=False) and s.appointment is not None:
                self.advance_manage()
                return
        if self.manage_step_reply(u):
            return
        self.advance_manage()

    def manage_step_reply(self, u: Utterance) -> bool:
        s = self.s
        i = u.intents
        yes, no = Intent.YES in i and Intent.NO not in i, Intent.NO in i
        if s.step == "confirm" and s.appointment is not None:
            if yes:
                if s.flow == CANCEL:
                    self.cancel()
                else:
                    self.move()
                return True
            if no:
                if s.flow == RESCHEDULE:
                    s.forget_times()
                    s.step = "when"
                    self.say("Okay, I haven't moved it. What other day or time would suit you?")
                else:
                    s.end_flow()
                    self.say(
                        "Okay, I've left your appointment as it is. "
                        "Is there anything else I can help with?"
                    )
                return True
        if s.step == "slot" and s.offers:
            if no or _OTHER_TIMES_RE.search(self.text):
                s.forget_times()
                s.step = "when"
                self.say("No problem. What other day or time would suit you?")
                return True
            if _LATER_RE.search(self.text) or _EARLIER_RE.search(self.text):
                self.shift_window(later=bool(_LATER_RE.search(self.text)))
                return True
            if yes and len(s.offers) == 1:
                s.chosen = s.offers[0]
                self.advance_manage()
                return True
            if u.choice is not None:
                self.say(f"Please choose a number from 1 to {len(s.offers)}.")
        if s.step == "appointment" and no:
            s.appointments, s.step = [], "reference"
            self.say("Okay. What's the reference of the booking you mean?")
            return True
        asked = ("reference", "phone", "confirm", "when", "slot", "appointment")
        if s.step in asked and not self.engaged(u):
            if Intent.GOODBYE in i:
                self.goodbye()
                return True
            s.misses += 1
            if s.step == "reference" and s.misses > 1:
                self.say(
                    "Your reference is in the confirmation we sent when you booked. "
                    "If you can't find it, you can ask to talk to a person."
                )
                return True
            self.say("Sorry, I didn't catch that.")
        return False

    def pick_appointment(self, u: Utterance) -> dict[str, Any] | None:
        listed = self.s.appointments
        if u.choice is not None:
            index = len(listed) - 1 if u.choice == -1 else u.choice - 1
            return listed[index] if 0 <= index < len(listed) else None
        hits = [
            a
            for a in listed
            if (u.dates is None or self.local(a["start"]).date() in u.dates)
            and (u.exact_time is None or self.local(a["start"]).time() == u.exact_time)
            and (u.service is None or a["service"] == u.service)
        ]
        if (u.dates or u.exact_time or u.service) and len(hits) == 1:
            return hits[0]
        if Intent.YES in u.intents and len(listed) == 1:
            return listed[0]
        return None

    def advance_manage(self) -> None:
        s = self.s
        if s.appointment is None and not self.find_appointment():
            return
        appointment = s.appointment
        assert appointment is not None
        what = f"your {appointment['service']} on {self.when(appointment['start'])}"
        if s.flow == FIND:
            return
        if s.flow == CANCEL:
            s.step = "confirm"
            self.say(f"Shall I cancel {what}? (yes/no)")
            return
        # Reschedule: the same service at a new time.
        s.want.service = appointment["service"]
        if s.chosen is None:
            if s.offers:
                self.ask_pick()
                return
            if not s.want.has_when:
                s.step = "when"
                self.say(f"I've found {what}. What day and time would you like to move it to?")
                return
            if not self.search():
                return
        assert s.chosen is not None
        s.step = "confirm"
        self.say(
            f"Shall I move {what} to {self.when(s.chosen['start'])}? (yes/no)"
        )

    def find_appointment(self) -> bool:
        """Identify the customer's appointment through the tools; False when it has asked."""
        s = self.s
        if s.appointments and s.step == "appointment":
            self.ask_appointment()
            return False
        if s.reference is None:
            if self.contact_phone:
                listed = self.lookup(reference=None)
                if listed is None:
                    return False
                if listed:
                    return self.take_listed(listed)
            if s.step == "reference" and s.reference is None:
                self.say("What's your booking reference? It looks like K7Q-4MZ.")
                return False
            s.step = "reference"
            self.say(
                "Sure. What's your booking reference? It's in your confirmation and "
                "looks like K7Q-4MZ."
            )
            return False
        if not self.contact_phone:
            s.step = "phone"
            self.say("And what phone number did you book with?")
            return False
        listed = self.lookup(reference=s.reference)
        if listed is None:
            return False
        match = [a for a in listed if a["reference"] == s.reference]
        if not match:
            s.end_flow()
            self.say(
                "That booking isn't an upcoming one; it may have been cancelled already "
                "or taken place. Is there anything else I can help with?"
            )
            return False
        if s.flow == FIND:
            self.tell_appointments(match)
            return False
        s.appointment = match[0]
        return True

    def take_listed(self, listed: list[dict[str, Any]]) -> bool:
        s = self.s
        if s.flow == FIND:
            self.tell_appointments(listed)
            return False
        if len(listed) == 1:
            s.appointment = listed[0]
            return True
        s.appointments = listed[: self.offer_count]
        self.ask_appointment()
        return False

    def ask_appointment(self) -> None:
        s = self.s
        s.step = "appointment"
        items = [f"{a['service']} on {self.when(a['start'])}" for a in s.appointments]
        self.say(f"Which appointment do you mean: {say.numbered(items)}?")

    def tell_appointments(self, listed: list[dict[str, Any]]) -> None:
        s = self.s
        items = [
            f"{a['service']}{' with ' + a['staff'] if a.get('staff') else ''} on "
            f"{self.when(a['start'])} (reference {a['reference']})"
            for a in listed
        ]
        s.end_flow()
        s.recent = listed[0] if len(listed) == 1 else None
        if len(items) == 1:
            self.say(f"You have {items[0]}.")
        else:
            self.say(f"You have {len(items)} upcoming appointments: {say.joined(items)}.")
        self.say("Is there anything else I can help with?")

    def lookup(self, *, reference: str | None) -> list[dict[str, Any]] | None:
        """The customer's upcoming appointments as the tools allow; None when it has replied."""
        s = self.s
        args: dict[str, Any] = {}
        if s.phone:
            args["phone"] = s.phone
        if reference:
            args["reference"] = reference
        result = self.tool("find_my_appointments", args)
        if result.get("ok"):
            listed = [self.appointment_of(a) for a in result.get("appointments") or []]
            if not listed and reference is None:
                if s.flow == FIND:
                    s.end_flow()
                    self.say(
                        "I can't find any upcoming appointments for that number. "
                        "Is there anything else I can help with?"
                    )
                    return None
                s.step = "reference"
                self.say(
                    "I can't find any upcoming appointments for that number. "
                    "If you have a booking reference, tell me and I'll look it up."
                )
                return None
            return listed
        code = str(result.get("error") or "")
        if code in ("verification_needed", "phone_required") and reference is None:
            return []
        if code == "not_found":
            if s.phone is None and self.caller:
                s.step = "phone"
                self.say(
                    "I couldn't match that reference to the number you're calling from. "
                    "What phone number did you book with?"
                )
                return None
            s.reference, s.phone = None, None
            s.step = "reference"
            self.say(
                "Sorry, I couldn't find a booking with that reference and phone number. "
                "Please check your confirmation and tell me the reference again."
            )
            return None
        if code == "invalid_reference":
            s.reference, s.step = None, "reference"
            self.say("That doesn't look like a booking reference. It looks like K7Q-4MZ.")
            return None
        if code == "invalid_input":
            s.phone, s.step = None, "phone"
            self.say("That phone number doesn't look right. What number did you book with?")
            return None
        s.end_flow()
        if code == "too_many_attempts":
            call = f" on {self.biz.phone}" if self.biz.phone else ""
            self.say(
                "Sorry, too many details didn't match, so I can't look up bookings in this "
                f"conversation any more. Please call us{call} or use the link in your confirmation."
            )
            return None
        self.say("Sorry, I couldn't look that up just now. Please try again in a moment.")
        return None

    def cancel(self) -> None:
        s = self.s
        appointment = s.appointment
        assert appointment is not None
        args: dict[str, Any] = {"reference": appointment["reference"]}
        if s.phone:
            args["phone"] = s.phone
        result = self.tool("cancel_appointment", args)
        what = f"your {appointment['service']} on {self.when(appointment['start'])}"
        if result.get("ok"):
            s.end_flow()
            s.recent = None
            self.outcome = "cancelled"
            self.say(f"Done: {what} is cancelled.", "Is there anything else I can help with?")
            return
        self.change_refused(_Refused(result), verb="cancel")

    def move(self) -> None:
        s = self.s
        appointment, slot = s.appointment, s.chosen
        assert appointment is not None and slot is not None
        args: dict[str, Any] = {"reference": appointment["reference"], "new_start": slot["start"]}
        if slot.get("staff_id") is not None:
            args["staff_id"] = slot["staff_id"]
        if s.phone:
            args["phone"] = s.phone
        result = self.tool("reschedule_appointment", args)
        if result.get("ok"):
            moved = self.appointment_of(result, fallback_service=appointment["service"])
            s.end_flow()
            s.recent = moved
            self.outcome = "rescheduled"
            staff = f" with {moved['staff']}" if moved.get("staff") else ""
            self.say(
                f"Done: your {moved['service']} is now on {self.when(moved['start'])}{staff}.",
                f"Your reference stays {moved['reference']}.",
                "Is there anything else I can help with?",
            )
            return
        refusal = _Refused(result)
        if refusal.code in ("slot_taken", "not_checked", "too_soon", "outside_hours", "closed",
                            "off_grid", "too_far_ahead"):
            if refusal.code == "slot_taken":
                self.say(f"Sorry, {self.when(slot['start'])} has just been taken.")
            else:
                self.say(refusal.message or "Sorry, that time can't be booked.")
            s.forget_times()
            if self.search(skip={slot["start"]}, lead="Here are other times"):
                self.advance_manage()
            return
        self.change_refused(refusal, verb="move")

    def change_refused(self, refusal: _Refused, *, verb: str) -> None:
        s = self.s
        s.end_flow()
        call = f" on {self.biz.phone}" if self.biz.phone else ""
        if refusal.code == "too_late_to_cancel":
            self.say(
                f"Sorry, it's too late to {verb} this appointment online; please call us{call}."
            )
        elif refusal.code == "invalid_state":
            self.say(f"Sorry, that appointment can't be changed any more. Please call us{call}.")
        elif refusal.code in ("not_found", "too_many_attempts"):
            self.say(
                "Sorry, I couldn't find a booking with that reference and phone number."
            )
        else:
            self.say(f"Sorry, I couldn't {verb} it just now. Please try again or call us{call}.")
        self.say("Is there anything else I can help with?")

    def appointment_of(
        self, raw: Mapping[str, Any], *, fallback_service: str = ""
    ) -> dict[str, Any]:
        return {
            "reference": str(raw.get("reference") or ""),
            "service": str(raw.get("service") or fallback_service),
            "staff": str(raw.get("staff") or ""),
            "start": str(raw.get("start") or ""),
        }


def _middle(bounds: tuple[time, time]) -> time:
    a = bounds[0].hour * 60 + bounds[0].minute
    b = bounds[1].hour * 60 + bounds[1].minute
    middle = (a + b) // 2
    middle -= middle % 15
    return time(middle // 60, middle % 60)


def _minutes_phrase(minutes: int) -> str:
    if minutes % 1440 == 0:
        n = minutes // 1440
        return f"{n} day{'s' if n != 1 else ''}"
    if minutes % 60 == 0:
        n = minutes // 60
        return f"{n} hour{'s' if n != 1 else ''}"
    return f"{minutes} minutes"
