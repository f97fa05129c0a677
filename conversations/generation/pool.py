"""The worker pool: one thread per reply, at most CHAT_MAX_GENERATIONS at once, the saver
thread beside them (which also holds the replies' leases on the bus), and the bus's control
listener; `start`, `stop` and `cancel` are the ways in."""

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections, connections

from common import memory
from conversations.generation import relay
from conversations.generation.live import Live, release_connection, running, running_lock
from conversations.generation.saver import save, save_progress
from conversations.generation.titles import retitle
from conversations.generation.turn import generate
from conversations.models import Message

logger = logging.getLogger(__name__)

UNEXPECTED_ERROR = (
    "chatsite hit an unexpected error while asking the model. Press Retry; if it keeps failing, "
    "an admin will find the details in the server log."
)

_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    with running_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=settings.CHAT_MAX_GENERATIONS, thread_name_prefix="chatsite-generation"
            )
            threading.Thread(target=_save_forever, name="chatsite-stream-saver", daemon=True).start()
            relay.listen(_stop_heard)
        return _pool


# Replies at once from which their end counts as the end of a burst (see common.memory).
BURST = 10


def _save_forever() -> None:
    renewed = 0.0
    peak = 0
    while True:
        time.sleep(settings.CHAT_STREAM_SAVE_INTERVAL_MS / 1000)
        peak = max(peak, len(running))
        if not running and peak >= BURST:
            peak = 0
            memory.trim()  # a burst is over: what its threads freed goes back to the system
        if time.monotonic() - renewed >= relay.RENEW_SECONDS:
            renewed = time.monotonic()
            try:
                relay.keep_alive(list(running))
            except Exception:
                logger.exception("renewing the replies' leases failed")
        # The saver must outlive any error: without it no reply would be saved as it streams.
        try:
            for message_id in save_progress():
                cancel(message_id)
        except Exception:
            # The next round tries again; the replies themselves go on streaming.
            logger.exception("saving streaming replies failed")
        try:
            release_connection()
        except Exception:
            logger.exception("releasing the saver's database connection failed")


def start(message_id: int) -> None:
    """Generate the reply of a stored `pending` assistant message in the background."""
    live = Live(bus=relay.publisher(message_id))
    if live.bus is not None:
        live.bus.begin()
    with running_lock:
        running[message_id] = live
    _executor().submit(_run, message_id, live)


def drain(timeout: float) -> int:
    """Wait up to `timeout` seconds for every reply of this process to be saved (a graceful
    restart); returns how many are still running."""
    deadline = time.monotonic() + timeout
    while running and time.monotonic() < deadline:
        time.sleep(0.1)
    return len(running)


def stop(message_id: int) -> None:
    """Stop a reply wherever it is generated: here at once, on another process through the bus."""
    if not cancel(message_id):
        relay.request_stop(message_id)


def _stop_heard(message_id: int) -> None:
    """Stop pressed on another process, heard on the bus: the listener thread must outlive any error."""
    try:
        cancel(message_id)
    except Exception:
        logger.exception("stopping message %s failed", message_id)
    finally:
        connections.close_all()  # the listener thread's: it lives as long as the process


def cancel(message_id: int) -> bool:
    """Stop a reply generated in this process now; False if it is not generated here."""
    live = running.get(message_id)
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
        save(message_id, status=Message.Status.STOPPED)
    return True


def _run(message_id: int, live: Live) -> None:
    close_old_connections()
    try:
        generate(message_id, live)
    except Exception:
        # A bug of ours must not leave the reply unfinished: label it and offer Retry.
        logger.exception("generating message %s failed unexpectedly", message_id)
        save(message_id, status=Message.Status.ERROR, content=live.text, error=UNEXPECTED_ERROR, error_code="internal")
    finally:
        with live.changed:
            live.finished = True
            live.changed.notify_all()
        if live.bus is not None:
            live.bus.end()
        try:
            # After the followers have their `done`; before the reply counts as idle.
            retitle(message_id)
        finally:
            with running_lock:
                running.pop(message_id, None)
            # This thread's connection, as every request thread's: given back to PostgreSQL's pool,
            # kept for the pool's next reply with SQLite (opening one costs ~0.8 ms of CPU).
            release_connection()
