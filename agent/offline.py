"""The offline assistant: a deterministic dialogue that needs no key and no network.

It reads each message with ``agent.language.parse`` and works through the same
tools as the LLM. This version covers the essentials: the services, prices,
hours, address and policies; booking (service + day + time + name + phone,
gathered over as many turns as needed, confirmed before it is made); and
cancelling by reference + phone. Its dialogue state (``TurnOutput.state``) is::

    {
      "expecting": "name" | "phone" | "email" | "reference" | "slot_choice"
                   | "service" | "date" | None,   # what the last reply asked for
      "booking": {"service": str, "staff": str, "date_from": "YYYY-MM-DD",
                  "date_to": "YYYY-MM-DD", "time": "HH:MM", "window": ["HH:MM", "HH:MM"],
                  "earliest": bool, "name": str, "phone": "+E164", "email": str,
                  "slot": {"start": iso, "staff_id": int, "staff": str, "when": str}},
      "offer": [slot, ...],          # the numbered times last listed
      "cancel": {"reference": str, "phone": str},
      "pending": {"action": "book", "slot": slot, ...} | {"action": "cancel", ...},
    }
"""

from __future__ import annotations

from datetime import time
from typing import Any

from agent.language import Expecting, Intent, Utterance, parse
from agent.providers import TurnInput, TurnOutput

HELP = ("I can book an appointment for you, and tell you about our services, prices "
        "and opening hours.")
MAX_OFFERED = 5
INFO_INTENTS = {Intent.SERVICES, Intent.PRICE, Intent.HOURS, Intent.LOCATION, Intent.POLICY}


def _hhmm(value: time) -> str:
    return f"{value:%H:%M}"


class OfflineProvider:
    name = "offline"

    def reply(self, turn: TurnInput) -> TurnOutput:
        state = dict(turn.state) if turn.state_by == self.name else {}
        dialogue = _Dialogue(turn, state)
        text = dialogue.respond()
        return TurnOutput(
            text=text, provider=self.name, state=dialogue.state, outcome=dialogue.outcome,
            finished=dialogue.finished, tool_calls=tuple(turn.tools.calls),
        )


class _Dialogue:
    def __init__(self, turn: TurnInput, state: dict[str, Any]) -> None:
        self.turn = turn
        self.facts = turn.facts
        self.state = state
        self.outcome: str | None = None
        self.finished = False

    # --- helpers ---

    def _parse(self) -> Utterance:
        expecting: Expecting | None = self.state.get("expecting")
        return parse(
            self.turn.text,
            now=self.turn.now,
            tz=self.facts.timezone,
            service_names=[s.name for s in self.facts.services],
            staff_names=list(self.facts.staff),
            default_region=self.facts.region,
            expecting=expecting,
        )

    def _tool(self, tool: str, /, **arguments: Any) -> dict[str, Any]:
        return self.turn.tools.run(tool, {k: v for k, v in arguments.items() if v is not None})

    def _ask(self, expecting: Expecting | None, text: str) -> str:
        self.state["expecting"] = expecting
        return text

    def _caller_phone(self) -> str:
        return self.turn.customer_phone if self.turn.channel in ("phone", "sms") else ""

    # --- the turn ---

    def respond(self) -> str:
        u = self._parse()
        intents = u.intents
        self.state["expecting"] = None
        has_detail = any((u.service, u.staff, u.dates, u.exact_time, u.time_window,
                          u.choice, u.earliest))

        pending = self.state.pop("pending", None)
        if pending and Intent.YES in intents and not has_detail:
            if pending.get("action") == "cancel":
                return self._do_cancel(pending)
            return self._do_book(pending)
        if pending and Intent.NO in intents and not has_detail:
            if pending.get("action") == "cancel":
                self.state.pop("cancel", None)
                return "All right, I've left your appointment as it is. Anything else?"
            self.state.get("booking", {}).pop("slot", None)
            return self._ask("date", "No problem. Which day or time would suit you better?")

        answers: list[str] = []
        if Intent.HUMAN in intents:
            self.outcome = "handed_off"
            phone = f" at {self.facts.phone}" if self.facts.phone else ""
            return (f"I'll let the team at {self.facts.name} know. You can also call us{phone}. "
                    "Is there anything I can do for you meanwhile?")
        if intents & INFO_INTENTS:
            answers.append(self._info(u))
        if Intent.CANCEL in intents or "cancel" in self.state:
            return " ".join([*answers, self._cancel(u)])
        if Intent.RESCHEDULE in intents:
            answers.append("To move an appointment, use the link in your confirmation, or "
                           "cancel it here and book a new time.")
        if Intent.WAITLIST in intents:
            answers.append("You can join the waitlist from our booking page; I'll gladly "
                           "look for a free time with you here too.")

        booking_words = bool(intents & {Intent.BOOK, Intent.AVAILABILITY, Intent.CORRECTION})
        contact = any((u.name, u.phone, u.email))
        if booking_words or has_detail or (contact and "booking" in self.state) or (
            "booking" in self.state and not answers and not intents
        ):
            answers.append(self._book(u))
        elif not answers:
            answers.append(self._small_talk(u))
        return " ".join(answers)

    def _small_talk(self, u: Utterance) -> str:
        intents = u.intents
        if Intent.GOODBYE in intents:
            self.finished = True
            return "Thank you, goodbye!"
        if Intent.THANKS in intents:
            return "You're welcome! Anything else I can help with?"
        if Intent.GREETING in intents:
            return f"Hello! {HELP} What would you like to do?"
        if u.gibberish:
            return f"Sorry, I didn't understand that. {HELP}"
        return f"Sorry, I'm not sure how to help with that. {HELP}"

    # --- information ---

    def _info(self, u: Utterance) -> str:
        facts = self.facts
        parts = []
        intents = u.intents
        if Intent.PRICE in intents and u.service:
            service = facts.service_named(u.service)
            if service is not None:
                parts.append(f"{service.name} is ${service.price:.2f} and takes "
                             f"{service.duration_minutes} minutes.")
        elif intents & {Intent.SERVICES, Intent.PRICE}:
            listed = "; ".join(f"{s.name} (${s.price:.2f}, {s.duration_minutes} min)"
                               for s in facts.services)
            parts.append(f"We offer: {listed}." if listed else "No services are bookable yet.")
        if Intent.HOURS in intents:
            parts.append("Our hours: " + "; ".join(facts.hours_text()) + ".")
        if Intent.LOCATION in intents:
            parts.append(f"You'll find us at {facts.address}." if facts.address
                         else f"Please call {facts.name} for directions.")
        if Intent.POLICY in intents:
            policies = facts.policies()
            parts.append(f"{policies['cancellation']} {policies['booking_window']}")
        return " ".join(parts)

    # --- booking ---

    def _merge(self, u: Utterance) -> dict[str, Any]:
        booking: dict[str, Any] = dict(self.state.get("booking") or {})
        if u.service:
            if booking.get("service") != u.service:
                booking.pop("slot", None)
            booking["service"] = u.service
        if u.staff:
            booking["staff"] = u.staff
            booking.pop("slot", None)
        if u.dates:
            booking["date_from"] = u.dates.start.isoformat()
            booking["date_to"] = u.dates.end.isoformat()
            booking.pop("slot", None)
            if not u.exact_time:
                booking.pop("time", None)
        if u.exact_time:
            booking["time"] = _hhmm(u.exact_time)
            booking.pop("slot", None)
        if u.time_window:
            booking["window"] = [_hhmm(u.time_window[0]), _hhmm(u.time_window[1])]
            booking.pop("slot", None)
        if u.earliest:
            booking["earliest"] = True
        offer = self.state.get("offer") or []
        if u.choice and offer:
            index = u.choice - 1 if u.choice > 0 else len(offer) - 1
            if 0 <= index < len(offer):
                booking["slot"] = offer[index]
        if u.name:
            booking["name"] = u.name
        if u.phone:
            booking["phone"] = u.phone
        if u.email:
            booking["email"] = u.email
        if not booking.get("phone") and self._caller_phone():
            booking["phone"] = self._caller_phone()
        return booking

    def _book(self, u: Utterance) -> str:
        booking = self._merge(u)
        self.state["booking"] = booking
        if not booking.get("service"):
            if len(u.service_candidates) > 1:
                return self._ask("service", "Which one do you mean: "
                                 + " or ".join(u.service_candidates) + "?")
            names = ", ".join(s.name for s in self.facts.services)
            return self._ask("service", f"Which service would you like? We offer {names}.")
        if not booking.get("slot"):
            if not booking.get("date_from") and not booking.get("earliest"):
                return self._ask("date", f"What day would you like to come in for your "
                                 f"{booking['service']}?")
            found = self._find_slot(booking)
            if found is not None:
                return found
        if not booking.get("name"):
            return self._ask("name", f"{booking['slot']['when']} is free. "
                             "May I have your full name?")
        if not booking.get("phone"):
            return self._ask("phone", "Thanks! What phone number can we reach you on?")
        slot = booking["slot"]
        self.state["pending"] = {"action": "book"}
        staff = f" with {slot['staff']}" if slot.get("staff") else ""
        return (f"Shall I book {booking['service']} on {slot['when']}{staff} for "
                f"{booking['name']} ({booking['phone']})? Please reply yes to confirm.")

    def _find_slot(self, booking: dict[str, Any]) -> str | None:
        """Sets booking["slot"] and returns None, or returns the question to ask."""
        window = booking.get("window")
        result = self._tool(
            "check_availability",
            service=booking["service"],
            date=booking.get("date_from"),
            end_date=booking.get("date_to"),
            time=booking.get("time"),
            after=window[0] if window and not booking.get("time") else None,
            before=window[1] if window and not booking.get("time") else None,
            staff=booking.get("staff"),
        )
        if not result.get("ok"):
            if result.get("field") == "staff":
                booking.pop("staff", None)
            return self._ask(None, str(result.get("message", "Sorry, that did not work.")))
        slots = result.get("slots") or []
        if booking.get("time") and result.get("available"):
            booking["slot"] = self._slot(slots[0])
            return None
        if not slots:
            booking.pop("time", None)
            return self._ask("date", "Sorry, nothing is free then. Would another day suit you?")
        if len(slots) > MAX_OFFERED:
            # Fewer choices read better (and are heard better on the phone).
            step = (len(slots) - 1) / (MAX_OFFERED - 1)
            slots = [slots[round(i * step)] for i in range(MAX_OFFERED)]
        self.state["offer"] = [self._slot(s) for s in slots]
        listed = "; ".join(f"{i}) {s['when']}" for i, s in enumerate(slots, 1))
        lead = (f"Sorry, {booking['time']} isn't free. The nearest times are"
                if booking.get("time") else f"Here are some free times for {booking['service']}")
        booking.pop("time", None)
        return self._ask("slot_choice", f"{lead}: {listed}. Which would you like?")

    @staticmethod
    def _slot(slot: dict[str, Any]) -> dict[str, Any]:
        return {k: slot.get(k) for k in ("start", "staff_id", "staff", "when")}

    def _do_book(self, pending: dict[str, Any]) -> str:
        booking = self.state.get("booking") or {}
        slot = booking.get("slot")
        if not slot:
            return self._ask("date", "Sorry, I lost track of the time. Which day would you like?")
        result = self._tool(
            "create_appointment",
            service=booking["service"], start=slot["start"], staff_id=slot.get("staff_id"),
            name=booking.get("name"), phone=booking.get("phone"), email=booking.get("email"),
        )
        if not result.get("ok"):
            field = result.get("field")
            if field in ("name", "phone", "email"):
                booking.pop(field, None)
                return self._ask(field, f"{result['message']} Could you give it again?")
            booking.pop("slot", None)
            self.state["booking"] = booking
            return self._ask("date", f"{result.get('message')} Would another time suit you?")
        self.state.pop("booking", None)
        self.state.pop("offer", None)
        return (f"You're booked! {result['service']} on {result['when']} with "
                f"{result['staff']}. Your reference is {result['reference']}. "
                "Anything else I can help with?")

    # --- cancelling ---

    def _cancel(self, u: Utterance) -> str:
        wanted: dict[str, Any] = dict(self.state.get("cancel") or {})
        if u.reference:
            wanted["reference"] = u.reference
        if u.phone:
            wanted["phone"] = u.phone
        if not wanted.get("phone") and self._caller_phone():
            wanted["phone"] = self._caller_phone()
        self.state["cancel"] = wanted
        if not wanted.get("reference"):
            return self._ask("reference", "I can cancel it for you. What is your booking "
                             "reference? It looks like K7Q-4MZ.")
        if not wanted.get("phone"):
            return self._ask("phone", "And the phone number you booked with?")
        result = self._tool("find_my_appointments", phone=wanted["phone"],
                            reference=wanted["reference"])
        match = [a for a in result.get("appointments") or []
                 if a.get("reference") == wanted["reference"]]
        if not result.get("ok") or not match:
            self.state.pop("cancel", None)
            if not result.get("ok"):
                return str(result.get("message"))
            return "I couldn't find an upcoming appointment with that reference and phone number."
        appointment = match[0]
        self.state["pending"] = {"action": "cancel"}
        return (f"Cancel your {appointment['service']} on {appointment['when']} "
                f"({appointment['reference']})? Please reply yes to confirm.")

    def _do_cancel(self, pending: dict[str, Any]) -> str:
        wanted = self.state.pop("cancel", None) or {}
        result = self._tool("cancel_appointment", reference=wanted.get("reference"),
                            phone=wanted.get("phone"))
        if not result.get("ok"):
            return str(result.get("message"))
        return (f"Done: your {result['service']} on {result['when']} is cancelled. "
                "Anything else?")

