"""Assistant replies are generated in background threads, independent of any browser connection.

`start` runs one reply: it streams from the upstream and keeps the text so far in this
process's memory for followers. One saver thread writes the text of every live reply of the
process to the database every CHAT_STREAM_SAVE_INTERVAL_MS, in one transaction, so a hundred
replies streaming at once cost a few writes a second, and no reply waits on the database
between two pieces of its text.
`follow` gives the text of a reply from an offset on, then ends when the reply is final: from
memory when the reply is generated in this process (each piece is relayed as it arrives), from
the database otherwise (another process generates it; it is read at the save interval). A
browser that goes away changes nothing: the reply is finished and saved either way.

Stop (`cancel`) closes the upstream connection of a reply generated in this process; a Stop
handled by another process sets `stop_requested` in the database, which the generator sees at
the saver's next round. A process that exits waits for its replies to finish (the pool's threads are
not daemons); one that is killed leaves them unfinished, and after the stale limit they are
shown as interrupted with Retry.
"""

import logging
import math
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections, transaction
from django.utils import timezone

from common import counters
from conversations import tokens
from conversations.models import Conversation, Message, title_from
from conversations.payload import DoesNotFit, build_messages, fit_window, request_params
from providers import catalogue, keys, wording
from providers.upstream import (
    CompletionStream,
    UpstreamConfig,
    UpstreamError,
    chat_completion,
    open_stream,
)
from usage import report
from usage.models import Usage

logger = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 15.0
# An open stream's slot lives this long unless renewed; a stream renews it at its events (a
# keep-alive at least every KEEPALIVE_SECONDS), so only a process that died leaves slots behind.
STREAM_SLOT_SECONDS = 4 * KEEPALIVE_SECONDS
UNEXPECTED_ERROR = (
    "chatsite hit an unexpected error while asking the model. Press Retry; if it keeps failing, "
    "an admin will find the details in the server log."
)


@dataclass
class _Live:
    """A reply being generated in this process: its text so far, shared with followers."""

    text: str = ""
    saved_length: int = 0
    finished: bool = False
    cancelled: bool = False
    stream: CompletionStream | None = None
    changed: threading.Condition = field(default_factory=threading.Condition)
    # Set by Stop: ends a wait between two attempts at once (see upstream.retries).
    stop: threading.Event = field(default_factory=threading.Event)
    # What the reply waits for before another attempt ("" while it is written), for followers.
    notice: str = ""
    notice_version: int = 0
    upstream: str = "the upstream"  # as the notice names it (wording.name)

    def append(self, piece: str) -> None:
        with self.changed:
            self.text += piece
            self.changed.notify_all()

    def waiting(self, seconds: float, error: UpstreamError) -> None:
        """The client's on_wait: tell the followers how long the reply waits before it tries again."""
        with self.changed:
            self.notice = waiting_notice(seconds, error, upstream=self.upstream) if seconds > 0 else ""
            self.notice_version += 1
            self.changed.notify_all()


@dataclass(frozen=True)
class Waiting:
    """Followed in place of text: the reply waits before another attempt ("" once it goes on)."""

    text: str


def waiting_notice(seconds: float, error: UpstreamError, *, upstream: str = "the upstream") -> str:
    """The pane's words while a failed attempt is retried, instead of "Writing…"."""
    whole = max(1, math.ceil(seconds))
    wait = f"{whole} second{'' if whole == 1 else 's'}"
    if error.status == 429:
        return f"Waiting {wait}: {upstream} is receiving too many requests. Then chatsite tries again…"
    return f"Waiting {wait} before trying again: {upstream} did not answer properly…"


_live: dict[int, _Live] = {}
_live_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _live_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=settings.CHAT_MAX_GENERATIONS, thread_name_prefix="chatsite-generation"
            )
            threading.Thread(target=_save_forever, name="chatsite-stream-saver", daemon=True).start()
        return _pool


def _save_forever() -> None:
    while True:
        time.sleep(settings.CHAT_STREAM_SAVE_INTERVAL_MS / 1000)
        # The saver must outlive any error: without it no reply would be saved as it streams.
        try:
            save_progress()
        except Exception:
            # The next round tries again; the replies themselves go on streaming.
            logger.exception("saving streaming replies failed")
        try:
            release_connection()
        except Exception:
            logger.exception("releasing the saver's database connection failed")


def save_progress() -> None:
    """Write the new text of every reply streaming in this process, and stop those whose Stop
    was pressed on another process (one transaction for all of them)."""
    with _live_lock:
        replies = [(message_id, live) for message_id, live in _live.items() if not live.finished]
    if not replies:
        return
    now = timezone.now()
    with transaction.atomic():
        for message_id, live in replies:
            text = live.text
            if len(text) > live.saved_length:
                # Only while the reply is unfinished: its final save must never be undone.
                Message.objects.filter(pk=message_id, status__in=Message.IN_PROGRESS).update(
                    content=text, status=Message.Status.STREAMING, updated_at=now
                )
                live.saved_length = len(text)
        stopped = Message.objects.filter(
            pk__in=[message_id for message_id, _ in replies], stop_requested=True, status__in=Message.IN_PROGRESS
        ).values_list("pk", flat=True)
        stopped = list(stopped)
    for message_id in stopped:
        cancel(message_id)


def start(message_id: int) -> None:
    """Generate the reply of a stored `pending` assistant message in the background."""
    live = _Live()
    with _live_lock:
        _live[message_id] = live
    _executor().submit(_run, message_id, live)


def cancel(message_id: int) -> bool:
    """Stop a reply generated in this process now; False if it is not generated here."""
    live = _live.get(message_id)
    if live is None:
        return False
    with live.changed:
        live.cancelled = True
        stream = live.stream
        live.changed.notify_all()
    live.stop.set()
    if stream is not None:
        stream.close()
    else:
        # The upstream has not answered yet, so there is no connection to close: the reply
        # is stopped now, and whatever the upstream answers later is dropped.
        _save(message_id, status=Message.Status.STOPPED)
    return True


def is_running(message_id: int) -> bool:
    return message_id in _live


def wait_until_idle(timeout: float = 10.0) -> bool:
    """Wait for every reply of this process to be saved (the tests use it)."""
    deadline = time.monotonic() + timeout
    while _live:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def release_connection() -> None:
    """Give back this thread's database connection before a long wait, when connections are
    pooled (PostgreSQL) or not kept; a connection kept per thread (SQLite) stays open."""
    close_old_connections()


def follow(message_id: int, offset: int = 0) -> Iterator[tuple[str, int] | Waiting | None]:
    """The reply's text from `offset` on, as (piece, new offset) pairs, until the reply is final.

    Yields None when nothing changed for KEEPALIVE_SECONDS, so the caller can keep the
    connection open, and `Waiting` when a reply generated in this process waits before another
    attempt (and again, with no text, when it goes on). Ends once the stored message is final.
    Holds no database connection while it waits.
    """
    release_connection()
    live = _live.get(message_id)
    if live is not None:
        notice_seen = 0
        while True:
            with live.changed:
                quiet = len(live.text) <= offset and live.notice_version == notice_seen
                if quiet and not live.finished and not live.cancelled:
                    live.changed.wait(KEEPALIVE_SECONDS)
                text, ending = live.text, live.finished or live.cancelled
                notice, version = live.notice, live.notice_version
            if version != notice_seen:
                notice_seen = version
                yield Waiting(notice)
                continue
            if len(text) > offset:
                yield text[offset:], len(text)
                offset = len(text)
            elif ending:
                break
            else:
                yield None
    # The final text is in the database once the live reply has finished; from another
    # process the reply is followed there until it is final.
    interval = settings.CHAT_STREAM_SAVE_INTERVAL_MS / 1000
    quiet_since = time.monotonic()
    while True:
        message = Message.objects.only("content", "status", "updated_at").get(pk=message_id)
        if len(message.content) > offset:
            yield message.content[offset:], len(message.content)
            offset = len(message.content)
            quiet_since = time.monotonic()
        if not message.in_progress:
            return
        release_connection()
        if time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
            yield None
            quiet_since = time.monotonic()
        time.sleep(interval)


class TooManyStreams(Exception):
    """The person, or the reply, already has as many open streams as allowed; says which."""


def stream_slots(*, user_id: int, message_id: int) -> list[counters.Lease]:
    """Take one of the person's CHAT_STREAMS_PER_PERSON and one of the reply's
    CHAT_STREAMS_PER_REPLY open streams, or raise TooManyStreams.

    Every stream holds a server thread for as long as it is open: without a cap, one person
    could take them all, and nothing else (sign-in, /healthz) would be served.
    """
    per_person, per_reply = settings.CHAT_STREAMS_PER_PERSON, settings.CHAT_STREAMS_PER_REPLY
    person = counters.lease(f"streams:person:{user_id}", limit=per_person, ttl=STREAM_SLOT_SECONDS)
    if person is None:
        raise TooManyStreams(
            f"You have {per_person} {'reply' if per_person == 1 else 'replies'} open already, the most at once. "
            "Close a tab or wait for a reply to finish, then reload this page."
        )
    reply = counters.lease(f"streams:reply:{message_id}", limit=per_reply, ttl=STREAM_SLOT_SECONDS)
    if reply is None:
        person.release()
        raise TooManyStreams(
            f"This reply is open in {per_reply} {'tab' if per_reply == 1 else 'tabs'} already, the most at once. "
            "Close one, then reload this page."
        )
    return [person, reply]


def _run(message_id: int, live: _Live) -> None:
    close_old_connections()
    try:
        _generate(message_id, live)
    except Exception:
        # A bug of ours must not leave the reply unfinished: label it and offer Retry.
        logger.exception("generating message %s failed unexpectedly", message_id)
        _save(message_id, status=Message.Status.ERROR, content=live.text, error=UNEXPECTED_ERROR, error_code="internal")
    finally:
        with live.changed:
            live.finished = True
            live.changed.notify_all()
        try:
            # After the followers have their `done`; before the reply counts as idle.
            _retitle(message_id)
        finally:
            with _live_lock:
                _live.pop(message_id, None)
            connections.close_all()  # this thread's connections only


TITLE_PROMPT = (
    "Write a short title (at most 6 words) for the conversation below, in its language. "
    "Answer with the title only: no quotes, no punctuation at the end."
)


def _retitle(message_id: int) -> None:
    """With CHAT_AUTO_TITLE_MODEL set: after the first reply, ask that model for a better title.

    The title taken from the first message stays when the call fails, answers nothing
    usable, or the person renamed the conversation meanwhile.
    """
    model = settings.CHAT_AUTO_TITLE_MODEL
    if not model:
        return
    try:
        message = Message.objects.select_related("conversation__owner", "parent").get(pk=message_id)
        question = message.parent
        first_reply = question is not None and question.parent_id is None and message.role == Message.Role.ASSISTANT
        conversation = message.conversation
        if not (first_reply and message.status == Message.Status.COMPLETE):
            return
        if conversation.title != title_from(question.content):
            return  # renamed by the person: theirs wins
        # The owner's key, and a usage row: the title is paid for like the reply.
        key = keys.resolve_key(conversation.owner)
        messages = [
            {"role": "system", "content": TITLE_PROMPT},
            {"role": "user", "content": f"{question.content[:2000]}\n\n---\n\n{message.content[:2000]}"},
        ]
        call = _Call(message, key, messages=messages, model=model)
        try:
            completion = chat_completion(
                messages=messages,
                model=model,
                params={"max_tokens": 24, "temperature": 0.2},
                config=key.config(),
            )
        except UpstreamError as error:
            call.failed(error)
            raise
        call.ended(
            Usage.Status.COMPLETE,
            text=completion.content,
            latency_ms=completion.latency_ms,
            first_token_ms=completion.latency_ms,
            **completion.usage,
        )
        title = _clean_title(completion.content)
        if title:
            Conversation.objects.filter(pk=conversation.pk, title=conversation.title).update(
                title=title, title_source=message
            )
    except UpstreamError as error:
        logger.info("no model-made title for message %s: %s", message_id, error)
    except Exception:
        logger.exception("making a title for message %s failed unexpectedly", message_id)


def _clean_title(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    title = lines[0].strip().strip("#*_`\"'“”‘’ ").removeprefix("Title:").strip().strip("\"'“”‘’ ").rstrip(".")
    return title_from(title)


def _generate(message_id: int, live: _Live) -> None:
    message = Message.objects.select_related("conversation__owner", "parent").get(pk=message_id)
    conversation = message.conversation
    try:
        key = keys.resolve_key(conversation.owner)
    except keys.EncryptionError as error:
        logger.error("cannot use a stored API key: %s", error)
        _save_failure(message_id, UpstreamError("key_unreadable"))
        return
    # The last check before the upstream: only a model the admins offer is ever sent.
    model = catalogue.offered_model(conversation.model)
    if not model or catalogue.model_is_turned_off(model):
        _save_failure(message_id, UpstreamError("model_not_offered"))
        return
    params = request_params(conversation, model=model)
    try:
        messages, omitted = fit_window(build_messages(conversation, upto=message.parent), model=model, params=params)
    except DoesNotFit as error:  # nothing is sent: the upstream would refuse it
        _save_failure(message_id, UpstreamError("too_long", detail=str(error)))
        return
    if omitted != message.context_omitted:
        _save(message_id, context_omitted=omitted)
    request = {"messages": messages, "model": model, "params": params, "config": key.config()}
    live.upstream = wording.name(request["config"])
    call = _Call(message, key, messages=messages, model=model)
    release_connection()  # the upstream may take a while; the saves take one again
    if not settings.CHAT_STREAMING:
        _generate_whole(message_id, live, request, call)
        return
    try:
        stream = open_stream(**request, stop=live.stop, on_wait=live.waiting)
    except UpstreamError as error:
        call.failed(error)
        if not live.cancelled:  # a reply stopped while waiting stays stopped
            _save_failure(message_id, error, request["config"])
        return
    with live.changed:
        live.stream = stream
        cancelled = live.cancelled
    if cancelled:
        stream.close()
    failure = None
    with stream:
        try:
            for piece in stream:
                live.append(piece)
        except UpstreamError as error:
            failure = error
        # Saved before the stream is released: releasing may still read the end of the body.
        if stream.cancelled:
            _save(message_id, status=Message.Status.STOPPED, content=live.text, **_stats(stream))
            call.ended(Usage.Status.STOPPED, text=live.text, **_stats(stream))
        elif failure is not None:
            _save_failure(message_id, failure, request["config"], content=live.text, **_stats(stream))
            call.failed(failure, text=live.text, **_stats(stream))
        else:
            _save(message_id, status=Message.Status.COMPLETE, content=live.text, **_stats(stream))
            call.ended(Usage.Status.COMPLETE, text=live.text, **_stats(stream))


def _generate_whole(message_id: int, live: _Live, request: dict, call: "_Call") -> None:
    """CHAT_STREAMING=0: one non-streamed request, for upstreams that cannot stream."""
    try:
        completion = chat_completion(**request, stop=live.stop, on_wait=live.waiting)
    except UpstreamError as error:
        call.failed(error)
        if not live.cancelled:
            _save_failure(message_id, error, request["config"])
        return
    # The whole reply arrives at once: its first text is its last byte.
    times = {"latency_ms": completion.latency_ms, "first_token_ms": completion.latency_ms}
    if live.cancelled:  # Stop was pressed while the upstream wrote: the reply stays stopped
        call.ended(Usage.Status.STOPPED, text=completion.content, **times, **completion.usage)
        return
    _save(
        message_id,
        status=Message.Status.COMPLETE,
        content=completion.content,
        finish_reason=completion.finish_reason,
        model=completion.model,
        upstream_id=completion.response_id,
        **times,
        **completion.usage,
    )
    live.append(completion.content)
    call.ended(Usage.Status.COMPLETE, text=completion.content, **times, **completion.usage)


class _Call:
    """The usage row of one upstream call, written when the call has ended (see usage.report)."""

    def __init__(self, message: Message, key: keys.ResolvedKey, *, messages: list[dict], model: str = ""):
        self.message, self.key, self.messages = message, key, messages
        self.model = model or message.conversation.model

    def ended(self, status: str, *, error_code: str = "", text: str | None = None, **stats) -> None:
        """`text`: what the upstream answered, when it answered at all; with no token counts
        from it (Stop closed the stream before its usage chunk, or the server sends none), the
        counts are estimated from the request and `text` (conversations.tokens)."""
        counts = ("prompt_tokens", "completion_tokens", "total_tokens")
        estimated = text is not None and all(stats.get(name) is None for name in counts)
        if estimated:
            stats["prompt_tokens"] = tokens.estimate_messages(self.messages)
            stats["completion_tokens"] = tokens.estimate(text)
            stats["total_tokens"] = stats["prompt_tokens"] + stats["completion_tokens"]
        try:
            report.record(
                user_id=self.message.conversation.owner_id,
                key=self.key.provider_key,
                model=self.model,
                message_id=self.message.pk,
                status=status,
                error_code=error_code,
                prompt_tokens=stats.get("prompt_tokens"),
                completion_tokens=stats.get("completion_tokens"),
                total_tokens=stats.get("total_tokens"),
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


def _stats(stream: CompletionStream) -> dict:
    return {
        "finish_reason": stream.finish_reason,
        "model": stream.model,
        "upstream_id": stream.response_id,
        "latency_ms": stream.latency_ms,
        "first_token_ms": stream.first_token_ms,
        **stream.usage,
    }


def _save_failure(message_id: int, error: UpstreamError, config: UpstreamConfig | None = None, **fields) -> None:
    """A labelled error with Retry; any text that arrived is kept (in `fields`)."""
    text = wording.explain(error, config)
    _save(message_id, status=Message.Status.ERROR, error=text, error_code=error.code, **fields)


def _save(message_id: int, **fields) -> None:
    if fields.get("latency_ms") is None:
        fields.pop("latency_ms", None)
    Message.objects.filter(pk=message_id).update(updated_at=timezone.now(), **fields)
