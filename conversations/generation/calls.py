"""The usage row of each upstream call a reply or a title makes (usage.services.record)."""

import logging

from django.db import DatabaseError

from conversations import tokens
from conversations.models import Message
from providers import keys
from providers.upstream import UpstreamError
from usage.models import Usage
from usage.services import record

logger = logging.getLogger(__name__)


class Call:
    """The usage row of one upstream call, written when the call has ended."""

    def __init__(self, message: Message, key: keys.ResolvedKey, *, messages: list[dict], model: str = ""):
        self.message, self.key, self.messages = message, key, messages
        self.model = model or message.conversation.model

    def ended(self, status: str, *, error_code: str = "", text: str | None = None, **stats) -> None:
        """`text`: what the upstream answered, when it answered at all; with no token counts
        from it (Stop closed the stream before its usage chunk, or the server sends none), the
        counts are estimated from the request and `text` (conversations.tokens)."""
        given = {name: stats.get(name) for name in tokens.COUNTS}
        counts, estimated = tokens.counts_or_estimate(given, messages=self.messages, text=text)
        try:
            record(
                user_id=self.message.conversation.owner_id,
                key=self.key.provider_key,
                model=self.model,
                message_id=self.message.pk,
                status=status,
                error_code=error_code,
                **counts,
                latency_ms=stats.get("latency_ms"),
                first_token_ms=stats.get("first_token_ms"),
                tokens_estimated=estimated,
            )
        except DatabaseError:
            # The reply is saved; a lost usage row must not turn it into an error.
            logger.exception("recording the usage of message %s failed", self.message.pk)

    def failed(self, error: UpstreamError, **stats) -> None:
        if error.code != "no_key":  # no key: nothing was sent
            self.ended(Usage.Status.ERROR, error_code=error.code, **stats)
