from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from agent.facts import business_facts
from agent.tools import ToolRunner
from tests.booking.conftest import (  # noqa: F401  (fixtures shared with the booking tests)
    NOW,
    Shop,
    base_setup,
    frozen,
    local,
    make_shop,
    shop,
)

MakeRunner = Callable[..., ToolRunner]


@pytest.fixture
def make_runner(shop: Shop) -> MakeRunner:  # noqa: F811
    """Tool runners for the `shop` business (in context), at NOW."""

    def make(
        *,
        channel: str = "chat",
        caller_phone: str = "",
        memory: Mapping[str, Any] | None = None,
    ) -> ToolRunner:
        return ToolRunner(
            channel=channel,
            now=NOW,
            facts=business_facts(now=NOW),
            memory=memory,
            caller_phone=caller_phone,
        )

    return make
