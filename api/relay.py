"""One /v1/chat/completions call through the chat page's path: limits, key, upstream, usage row.

The upstream client brings its retries (before the first byte) and its breaker. A streamed reply
is re-emitted as OpenAI `chat.completion.chunk` events as each piece arrives, framed by
`common.sse`; failures before the first byte are answered with a status, those after it with an
error event, as OpenAI does.
"""

import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.utils import timezone

from api import history
from api.body import ChatRequest
from api.errors import ApiError, from_upstream
from common import sse
from conversations import tokens
from providers import keys
from providers.upstream import UpstreamError, chat_completion, open_stream
from usage import quotas
from usage.models import Usage
from usage.services import record

logger = logging.getLogger(__name__)


def check_limits(user) -> None:
    """The page's quota and rate limit (`usage.quotas`): one budget, answered 429 with Retry-After."""
    try:
        quotas.check_quota(user)
    except quotas.LimitReached as error:
        raise ApiError(429, str(error), code="quota_exceeded", retry_after=_seconds_to_tomorrow()) from None
    try:
        quotas.check_rate(user.pk)
    except quotas.LimitReached as error:
        wait = quotas.RATE_WINDOW_SECONDS - int(time.time() % quotas.RATE_WINDOW_SECONDS)
        raise ApiError(429, str(error), code="rate_limit_exceeded", retry_after=max(1, wait)) from None


class Call:
    """One call of one person: the key it uses, the turn it may store, and its usage row."""

    def __init__(self, user, chat: ChatRequest, *, store: bool):
        self.user, self.chat = user, chat
        try:
            self.key = keys.resolve_key(user)
        except keys.EncryptionError as error:
            logger.error("cannot use a stored API key: %s", error)
            raise from_upstream(UpstreamError("key_unreadable"), None) from None
        self.config = self.key.config()
        # The person's messages are stored before the upstream is asked, as on the chat page.
        self.turn = history.turn_start(owner=user, chat=chat) if store else None
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def whole(self) -> dict:
        """The reply as one `chat.completion` object."""
        try:
            reply = chat_completion(**self._request())
        except UpstreamError as error:
            raise self._failed(error) from None
        usage = self._ended(
            Usage.Status.COMPLETE,
            reply.content,
            reply.usage,
            latency_ms=reply.latency_ms,
            first_token_ms=reply.latency_ms,  # a whole reply's first text is its last byte
            finish=reply.finish_reason,
        )
        message = {"role": "assistant", "content": reply.content}
        choice = {"index": 0, "message": message, "finish_reason": reply.finish_reason or "stop", "logprobs": None}
        return {**self._head("chat.completion"), "choices": [choice], "usage": usage}

    def stream(self) -> Iterator[str]:
        """Open the stream now (failures before the first byte raise ApiError); returns its events."""
        try:
            upstream = open_stream(**self._request())
        except UpstreamError as error:
            raise self._failed(error) from None
        return self._events(upstream)

    def _events(self, upstream) -> Iterator[str]:
        text, status, failure = [], Usage.Status.STOPPED, None
        try:
            with upstream:
                yield self._chunk({"role": "assistant", "content": ""})
                for piece in upstream:
                    text.append(piece)
                    yield self._chunk({"content": piece})
                status = Usage.Status.COMPLETE
        except UpstreamError as error:
            status, failure = Usage.Status.ERROR, error
        finally:  # also when the caller went away (GeneratorExit): the row says "stopped"
            usage = self._ended(
                status,
                "".join(text),
                upstream.usage,
                latency_ms=upstream.latency_ms,
                first_token_ms=upstream.first_token_ms,
                finish=upstream.finish_reason,
                error=failure,
            )
        if failure is not None:
            yield sse.format_event(json.dumps(from_upstream(failure, self.config).body()))
            return
        yield self._chunk({}, finish_reason=upstream.finish_reason or "stop")
        if self.chat.include_usage:
            yield sse.format_event(json.dumps({**self._head("chat.completion.chunk"), "choices": [], "usage": usage}))
        yield sse.format_event("[DONE]")

    def _request(self) -> dict:
        chat = self.chat
        return {"messages": chat.messages, "model": chat.model, "params": chat.params, "config": self.config}

    def _head(self, kind: str) -> dict:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.chat.model}

    def _chunk(self, delta: dict, *, finish_reason: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return sse.format_event(json.dumps({**self._head("chat.completion.chunk"), "choices": [choice]}))

    def _failed(self, error: UpstreamError) -> ApiError:
        self._ended(Usage.Status.ERROR, None, {}, error=error)
        return from_upstream(error, self.config)

    def _ended(self, status: str, text: str | None, counts: dict, *, finish: str = "", error=None, **times) -> dict:
        """Write the usage row (and the stored turn's reply); return the usage the caller is told."""
        counts, estimated = tokens.counts_or_estimate(counts, messages=self.chat.messages, text=text)
        if error is None or error.code != "no_key":  # no key: nothing was sent
            record(
                user_id=self.user.pk,
                key=self.key.provider_key,
                model=self.chat.model,
                status=status,
                error_code=error.code if error else "",
                tokens_estimated=estimated,
                source=Usage.Source.API,
                **counts,
                **times,
            )
        if self.turn is not None:
            history.turn_end(self.turn, status=status, text=text or "", error=error, config=self.config, finish=finish)
        return {name: counts.get(name, 0) for name in tokens.COUNTS}


def _seconds_to_tomorrow(now: datetime | None = None) -> int:
    now = timezone.localtime(now)
    tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=now.tzinfo)
    return max(1, int((tomorrow - now).total_seconds()))
