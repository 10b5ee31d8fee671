"""Talk to a business's assistant in the terminal: one message a line on stdin."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agent.engine import conversation_start, conversation_turn, greeting_text
from agent.models import Conversation
from tenants.context import tenant_context
from tenants.selectors import tenant_by_slug


class Command(BaseCommand):
    help = "Chat with a business's assistant (stdin/stdout, one message a line)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_slug(options["slug"])
        if tenant is None:
            raise CommandError(f"No business with the slug {options['slug']!r}.")
        with tenant_context(tenant):
            conversation = conversation_start(channel=Conversation.Channel.CHAT)
            self._say(greeting_text())
            for line in sys.stdin:
                text = line.strip()
                if not text:
                    continue
                result = conversation_turn(conversation=conversation, text=text)
                self._say(result.text)

    def _say(self, text: str) -> None:
        # One reply a line, so a script reading stdout pairs replies with messages.
        self.stdout.write(" ".join(text.split()))
        self.stdout.flush()
