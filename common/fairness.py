"""Sends served in the order they came: at most a few at once per process, the rest queued first come, first served.

A send is the costliest request (checks, a transaction, a rendered fragment), and a burst of them
on a gthread worker would otherwise all run at once: each thread takes the GIL in turn, so all of
them finish late and at about the same time, the threads relaying words wait behind all of them,
and SQLite's busy handler, which polls, lets a late writer overtake an early one. Queued, the
first sends are answered (and their replies started) while the later ones wait, and the relays
compete with a few threads instead of every pending send.
"""

import collections
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class FairQueue:
    """A semaphore that hands a freed place to the thread that has waited longest."""

    def __init__(self, places: int):
        self._lock = threading.Lock()
        self._free = places
        self._waiting: collections.deque[threading.Lock] = collections.deque()
        self._arrivals = 0

    def acquire(self) -> int:
        """Wait for a place; the caller's turn: 1 for the first arrival, 2 for the next, ..."""
        with self._lock:
            self._arrivals += 1
            number = self._arrivals
            if self._free:
                self._free -= 1
                return number
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
        turn.acquire()  # released by `release`, which hands this thread the place directly
        return number

    def release(self) -> None:
        with self._lock:
            if self._waiting:
                self._waiting.popleft().release()
            else:
                self._free += 1


def queued(view: Callable) -> Callable:
    """Mark a view as one whose requests wait their turn in FairQueueMiddleware."""
    view.queued = True
    return view


class FairQueueMiddleware:
    """Runs the views marked `queued` CHAT_SENDS_AT_ONCE at a time, in the order their requests came.

    First in MIDDLEWARE: its process_view runs before the session, the user and the CSRF token
    are read, so all of a send's work waits in the queue, not just the view. The request keeps
    its turn and how long it waited (`fair_queue_turn`, `fair_queue_wait_ms`) for Server-Timing
    (common.timing), which shows the server's own order of a burst of sends.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.queue = FairQueue(settings.CHAT_SENDS_AT_ONCE)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        finally:
            if getattr(request, "_fair_queue_place", False):
                request._fair_queue_place = False
                self.queue.release()

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> None:
        if getattr(view_func, "queued", False):
            waited = time.perf_counter()
            request.fair_queue_turn = self.queue.acquire()
            request.fair_queue_wait_ms = (time.perf_counter() - waited) * 1000
            request._fair_queue_place = True
