"""The offline assistant: a deterministic dialogue that needs no key and no network.

The conversation itself lives in ``agent.dialogue`` (a state machine over
``agent.language.parse`` that acts only through the same tools as the LLM);
this module adapts it to the provider interface.
"""

from __future__ import annotations

from agent.dialogue import BusinessInfo, respond
from agent.providers import TurnInput, TurnOutput
from billing.entitlements import has_feature
from billing.plans import WAITLIST


class OfflineProvider:
    name = "offline"
    # The dialogue keeps what it needs in its state: the engine skips reading the transcript.
    reads_history = False

    def reply(self, turn: TurnInput) -> TurnOutput:
        # Another provider's state means nothing here: start the dialogue afresh.
        state = dict(turn.state) if turn.state_by == self.name else {}
        business = BusinessInfo.from_facts(
            turn.facts, waitlist=has_feature(turn.tools.tenant, WAITLIST)
        )
        result = respond(
            state=state,
            text=turn.text,
            now=turn.now,
            business=business,
            call_tool=turn.tools.run,
            # Only the phone and SMS channels carry a caller ID the tools trust.
            caller_phone=turn.tools.caller_phone or None,
        )
        return TurnOutput(
            text=result.text,
            provider=self.name,
            state=result.state,
            outcome=result.outcome,
            finished=result.finished,
            tool_calls=tuple(turn.tools.calls),
        )
