"""Sends wait their turn first come, first served (common.fairness)."""

import threading
import time

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from common.fairness import FairQueue, FairQueueMiddleware, queued
from conversations.views import turns


def _wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the threads did not queue"
        time.sleep(0.001)


def test_a_freed_place_goes_to_the_thread_that_waited_longest():
    queue = FairQueue(1)
    queue.acquire()
    served = []

    def send(number):
        queue.acquire()
        served.append(number)
        queue.release()

    threads = []
    for number in range(8):
        thread = threading.Thread(target=send, args=(number,))
        thread.start()
        threads.append(thread)
        _wait_for(lambda n=number: len(queue._waiting) == n + 1)
    queue.release()
    for thread in threads:
        thread.join(5)

    assert served == list(range(8))
    assert queue._free == 1 and not queue._waiting


def test_places_are_shared_up_to_the_limit():
    queue = FairQueue(2)
    queue.acquire()
    queue.acquire()
    third = threading.Thread(target=queue.acquire)
    third.start()
    _wait_for(lambda: len(queue._waiting) == 1)
    assert third.is_alive(), "a third send waits while two are served"

    queue.release()
    third.join(5)
    assert not third.is_alive() and queue._free == 0


def _middleware(view, settings, places=1):
    settings.CHAT_SENDS_AT_ONCE = places
    request = RequestFactory().post("/c/")

    def get_response(request):
        middleware.process_view(request, view, (), {})
        return view(request)

    middleware = FairQueueMiddleware(get_response)
    return middleware, request


def test_a_queued_view_gives_its_place_back_even_when_it_fails(settings):
    @queued
    def failing(request):
        assert middleware.queue._free == 0, "the view runs holding a place"
        raise RuntimeError("a bug")

    middleware, request = _middleware(failing, settings)

    with pytest.raises(RuntimeError):
        middleware(request)
    assert middleware.queue._free == 1


def test_other_views_do_not_queue(settings):
    def page(request):
        assert middleware.queue._free == 1
        return HttpResponse("ok")

    middleware, request = _middleware(page, settings)

    assert middleware(request).status_code == 200


def test_the_chats_sends_are_the_queued_views(settings):
    assert settings.MIDDLEWARE[0] == "common.fairness.FairQueueMiddleware"
    assert turns.conversation_create.queued and turns.message_create.queued
    assert not hasattr(turns.message_stop, "queued"), "Stop never waits behind sends"
