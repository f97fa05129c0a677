"""Live replies across processes and hosts, on the Redis bus (CHAT_BUS_REDIS_URL, REDIS_URL by default).

The generating process appends each piece of a reply to the reply's stream, with the piece's
start offset, so a follower on any process reads it as it arrives (`follow`) and resumes
from any offset; the database save interval is for durability only. Stop pressed on any
process is a control message the generating process hears at once. The generating process
holds a lease per reply and renews it every RENEW_SECONDS; a reply whose lease ran out (its
process was killed, its host lost) is marked interrupted with Retry by whoever notices first:
a follower, or the saver's sweep of any process.

Without the bus nothing here runs. With it, Redis is an accelerator and never the record: a
failed write is logged once per outage, the reply goes on and is saved, and followers fall
back to the database.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from common.bus import FINISHED_TTL_SECONDS, STREAM_TTL_SECONDS, Bus, BusUnavailable
from conversations.models import Message

logger = logging.getLogger(__name__)

LEASE_SECONDS = 6.0
RENEW_SECONDS = 2.0
KEEPALIVE_SECONDS = 15.0  # a quiet stream gets a comment this often, every path alike
EXPIRY_PUSH_SECONDS = 60.0  # a stream's expiry (an hour) is pushed back this often while it is written
INTERRUPTED = (
    "The server writing this reply stopped before it finished (a restart or a lost host). "
    "The text so far is kept; press Retry for a new reply."
)

_bus: Bus | None = None
_bus_lock = threading.Lock()
_down = False  # an outage is logged once, when it starts, and once when it ends


def bus() -> Bus | None:
    """The process's bus, or None without CHAT_BUS_REDIS_URL."""
    global _bus
    if not settings.CHAT_BUS_REDIS_URL:
        return None
    if _bus is not None:  # every piece of every reply asks: no lock once it exists
        return _bus
    with _bus_lock:
        if _bus is None:
            _bus = Bus(settings.CHAT_BUS_REDIS_URL)
        return _bus


def _failed(error: BusUnavailable) -> None:
    global _down
    if not _down:
        _down = True
        logger.warning(
            "the Redis bus is unreachable (%s): replies go on and are saved; "
            "streams on other processes read them from the database",
            error,
        )


def _reachable() -> None:
    global _down
    if _down:
        _down = False
        logger.warning("the Redis bus is reachable again")


class Publisher:
    """The writes of one reply to its stream; after a failure it rests a second, not each piece."""

    def __init__(self, message_id: int) -> None:
        self.message_id = message_id
        self.retry_at = 0.0
        self.expiry_pushed_at: float | None = None

    def _append(self, fields: dict[str, str], *, ttl: int | None = None) -> None:
        target = bus()
        now = time.monotonic()
        if target is None or now < self.retry_at:
            return
        # The stream's expiry is pushed back with its first entry and then once a minute, not
        # with every piece: an EXPIRE beside each XADD made every streamed word cost more.
        if ttl is None and (self.expiry_pushed_at is None or now - self.expiry_pushed_at >= EXPIRY_PUSH_SECONDS):
            ttl = STREAM_TTL_SECONDS
        try:
            target.append(self.message_id, fields, ttl=ttl)
        except BusUnavailable as error:
            self.retry_at = time.monotonic() + 1.0
            _failed(error)
        else:
            if ttl is not None:
                self.expiry_pushed_at = now
            _reachable()

    def begin(self) -> None:
        """A fresh stream (a Retry reuses the message's id) and the lease, before any follower reads."""
        target = bus()
        if target is None:
            return
        try:
            target.reset(self.message_id)
            target.renew([self.message_id], LEASE_SECONDS)
        except BusUnavailable as error:
            _failed(error)

    def piece(self, start: int, text: str) -> None:
        self._append({"s": str(start), "t": text})

    def notice(self, text: str) -> None:
        self._append({"w": text})

    def end(self) -> None:
        """After the final save: followers read the stored message; the lease is given back."""
        self.retry_at = 0.0
        self._append({"end": "1"}, ttl=FINISHED_TTL_SECONDS)
        target = bus()
        if target is not None:
            try:
                target.release(self.message_id)
            except BusUnavailable as error:
                _failed(error)


def publisher(message_id: int) -> Publisher | None:
    """The writes of one reply to the bus, or None without one (then nothing is written per piece)."""
    return Publisher(message_id) if bus() is not None else None


def request_stop(message_id: int) -> None:
    """Tell every process to stop the reply (the one generating it does); the database flag stays
    as the fallback the saver reads."""
    target = bus()
    if target is not None:
        try:
            target.send(f"stop {message_id}")
        except BusUnavailable as error:
            _failed(error)


def listen(cancel: Callable[[int], object]) -> None:
    """Start the thread that hears Stop from other processes and cancels the reply here."""
    target = bus()
    if target is None:
        return

    def on_message(message: str) -> None:
        verb, _, message_id = message.partition(" ")
        if verb == "stop" and message_id.isdigit():
            cancel(int(message_id))

    threading.Thread(target=target.listen, args=(on_message,), name="chatsite-bus-control", daemon=True).start()


def keep_alive(message_ids: Iterable[int]) -> None:
    """The saver's round: renew the leases of this process's replies, then sweep expired ones."""
    target = bus()
    if target is None:
        return
    ours = set(message_ids)
    try:
        target.renew(ours, LEASE_SECONDS)
        expired = [message_id for message_id in target.expired() if message_id not in ours]
        for message_id in expired:
            abandon(message_id)
            if not Message.objects.filter(pk=message_id, status__in=Message.IN_PROGRESS).exists():
                target.release(message_id)
    except BusUnavailable as error:
        _failed(error)
    else:
        _reachable()


def abandon(message_id: int) -> bool:
    """Mark a reply interrupted (its text kept, Retry offered) when nothing has written it for a
    lease's length; compare-and-set on its status, so of all who notice, one marks it."""
    now = timezone.now()
    return bool(
        Message.objects.filter(
            pk=message_id, status__in=Message.IN_PROGRESS, updated_at__lt=now - timedelta(seconds=LEASE_SECONDS)
        ).update(status=Message.Status.INTERRUPTED, error=INTERRUPTED, error_code="interrupted", updated_at=now)
    )


def follow(message_id: int, offset: int) -> Iterator[tuple[str, int] | str | None]:
    """The reply's pieces from `offset` on, read from its stream as they arrive: (piece, new
    offset) pairs, a str for a notice of waiting, None after KEEPALIVE_SECONDS of quiet.

    Returns the offset reached when the stream ends, when it no longer holds the text from the
    offset (trimmed), when the reply's lease ran out (the reply is then marked interrupted), or
    when Redis fails: the caller reads the rest from the database.
    """
    target = bus()
    after = "0"
    quiet_since = time.monotonic()
    entries = []
    while True:
        try:
            # Before each wait: a reply nobody holds (its process died, or it has no bus) is
            # not waited for.
            if not entries and not target.held(message_id):
                abandon(message_id)
                return offset
            entries = target.read(message_id, after, block_ms=1000)
        except BusUnavailable as error:
            _failed(error)
            return offset
        events, offset, ended = _events(entries, offset)
        yield from events
        if ended:
            return offset
        if entries:
            after = entries[-1][0]
        if events:
            quiet_since = time.monotonic()
        if not entries and time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
            yield None
            quiet_since = time.monotonic()


def _events(entries: list[tuple[str, dict[str, str]]], offset: int) -> tuple[list, int, bool]:
    """One read's entries as follow's events, the new offset, and whether following ends here (the
    reply's end, or a gap the stream no longer holds). Pieces that follow each other are joined:
    a follower that fell behind catches up in one write, as it does from memory."""
    events: list = []
    joined = ""
    ended = False
    for _, fields in entries:
        if "s" in fields:
            start, text, reached = int(fields["s"]), fields["t"], offset + len(joined)
            if start > reached:
                ended = True
                break
            joined += text[reached - start :]
            continue
        if joined:
            offset += len(joined)
            events.append((joined, offset))
            joined = ""
        if "end" in fields:
            ended = True
            break
        events.append(fields.get("w", ""))
    if joined:
        offset += len(joined)
        events.append((joined, offset))
    return events, offset, ended
