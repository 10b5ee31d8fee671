"""The chat websocket, ``/ws/chat/<slug>/`` (protocol in CONTRACT.md).

TenantWebsocketMiddleware has put the business in ``scope["tenant"]`` and made
it the tenant in context. Opening a conversation and answering a turn run in
the general thread pool, not through ``database_sync_to_async``: Channels runs
every ``database_sync_to_async`` of a process on one thread, and one turn
waiting seconds on an LLM, or one write waiting on the business's SQLite lock,
would stall every chat there. A pool thread keeps its connection to the
business between turns (``agent.db``).
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from agent import ratelimit
from agent.db import turn_begins, turn_ends
from agent.engine import (
    TurnResult,
    conversation_get,
    conversation_start,
    conversation_turn,
    greeting_text,
)
from agent.models import Conversation
from billing.entitlements import has_feature
from billing.plans import CHAT
from smartscheduler.ratelimits import scope_client_ip
from tenants.context import tenant_context
from tenants.db import alias_for
from tenants.models import Tenant

logger = logging.getLogger(__name__)

# A frame bigger than this is refused unread (the text limit is far below it).
MAX_FRAME_CHARS = 8 * 1024
UNAVAILABLE_CLOSE_CODE = 4403
RATE_LIMITED_CLOSE_CODE = 4429

TEXTS = {
    "bad_json": "Messages must be JSON like {\"type\": \"message\", \"text\": \"...\"}.",
    "bad_type": "Only messages of type \"message\" are understood.",
    "no_text": "The message needs some text.",
    "too_long": "Please keep messages under {limit} characters.",
    "rate_limited": "You're sending messages very fast. Please wait a moment and try again.",
    "unavailable": "Sorry, the assistant is not available right now.",
    "busy": "Sorry, something went wrong on our side. Please try again in a moment.",
}


class ChatConsumer(AsyncWebsocketConsumer):
    tenant: Tenant
    conversation: Conversation

    async def connect(self) -> None:
        self.tenant = self.scope["tenant"]
        self.connection_id = secrets.token_hex(8)
        await self.accept()
        if not (self.tenant.is_active and has_feature(self.tenant, CHAT)):
            await self._error("unavailable", f"{self.tenant.name} is not offering chat at the "
                              "moment. Please use the booking page or call.")
            await self.close(code=UNAVAILABLE_CLOSE_CODE)
            return
        if not await self._allowed("connect"):
            # Each connection may start a conversation row: reconnect storms are limited.
            await self._error("rate_limited", TEXTS["rate_limited"])
            await self.close(code=RATE_LIMITED_CLOSE_CODE)
            return
        wanted = parse_qs(self.scope.get("query_string", b"").decode("latin1")).get(
            "conversation", [""]
        )[0]
        # In the general pool, like a turn: starting a conversation writes, and a write
        # waiting on the business's lock must not hold up Channels' one database thread.
        self.conversation, greeting = await sync_to_async(self._open, thread_sensitive=False)(
            wanted
        )
        await self._send({"type": "welcome", "conversation": self.conversation.public_id,
                          "text": greeting})

    def _open(self, wanted: str) -> tuple[Conversation, str]:
        # What database_sync_to_async does around a call (see _turn).
        turn_begins()
        try:
            with tenant_context(self.tenant):
                # Another business's id is simply unknown here: it is not in this database.
                conversation = None
                if wanted:
                    conversation = conversation_get(wanted, channel=Conversation.Channel.CHAT)
                if conversation is None:
                    conversation = conversation_start(channel=Conversation.Channel.CHAT)
                return conversation, greeting_text()
        finally:
            turn_ends(alias_for(self.tenant.pk))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not hasattr(self, "conversation"):
            return  # refused at connect; the close is on its way
        # Every frame counts, so a flood of malformed ones is limited too.
        if not await self._allowed("message"):
            await self._error("rate_limited", TEXTS["rate_limited"])
            return
        text, problem = self._read(text_data)
        if problem is not None:
            limit = f"{settings.AGENT_MAX_MESSAGE_CHARS:,}"
            await self._error("bad_request", TEXTS[problem].replace("{limit}", limit))
            return
        await self._send({"type": "typing"})
        try:
            result = await sync_to_async(self._turn, thread_sensitive=False)(text)
        except Exception:
            logger.exception("chat turn failed")
            await self._error("unavailable", TEXTS["busy"])
            return
        await self._send({"type": "reply", "conversation": self.conversation.public_id,
                          "text": result.text})

    # --- helpers ---

    @staticmethod
    def _read(frame: str | None) -> tuple[str, str | None]:
        """(the message's text, None), or ("", why the frame is refused)."""
        if frame is None:
            return "", "bad_json"
        if len(frame) > MAX_FRAME_CHARS:
            return "", "too_long"
        try:
            data = json.loads(frame)
        except (ValueError, RecursionError):
            # A few KB of "[[[[..." nest deeper than the decoder's recursion limit.
            return "", "bad_json"
        if not isinstance(data, dict):
            return "", "bad_json"
        if data.get("type") != "message":
            return "", "bad_type"
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            return "", "no_text"
        if len(text.strip()) > settings.AGENT_MAX_MESSAGE_CHARS:
            return "", "too_long"
        return text.strip(), None

    async def _allowed(self, event: str) -> bool:
        tenant_id = self.tenant.pk.hex
        # Behind a load balancer the socket's peer is the balancer: the address
        # comes from X-Forwarded-For as far as RATELIMIT_TRUSTED_PROXIES trusts it.
        per_ip = f"{tenant_id}:{event}:ip:{scope_client_ip(self.scope) or 'unknown'}"
        per_connection = f"{tenant_id}:{event}:conn:{self.connection_id}"

        def check() -> bool:
            ok_ip = ratelimit.hit(per_ip, limit=settings.AGENT_CHAT_RATE_PER_IP)
            if event == "connect":
                return ok_ip
            # Both count every message, so a flood also fills the address's window.
            ok_connection = ratelimit.hit(
                per_connection, limit=settings.AGENT_CHAT_RATE_PER_CONNECTION
            )
            return ok_connection and ok_ip

        return bool(await sync_to_async(check, thread_sensitive=False)())

    def _turn(self, text: str) -> TurnResult:
        # What database_sync_to_async does around a call, for a thread of the pool,
        # except that the thread keeps its connection to this business a while.
        turn_begins()
        try:
            with tenant_context(self.tenant):
                return conversation_turn(conversation=self.conversation, text=text)
        finally:
            turn_ends(alias_for(self.tenant.pk))

    async def _send(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame))

    async def _error(self, code: str, text: str) -> None:
        await self._send({"type": "error", "code": code, "text": text})
