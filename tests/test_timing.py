"""Server-Timing (common.timing): what a request cost the process, only when CHAT_SERVER_TIMING is on."""

import re
import threading
import time
import uuid

import pytest
from django.http import HttpResponse, StreamingHttpResponse
from django.test import RequestFactory

from common.fairness import FairQueueMiddleware, queued
from common.timing import ServerTimingMiddleware
from tests.conftest import settle
from tests.test_settings import _shell

TIMING = "common.timing.ServerTimingMiddleware"


def _metrics(header: str) -> dict[str, dict[str, str]]:
    """`app;dur=1.2, queue;dur=0;desc="3"` as {"app": {"dur": "1.2"}, "queue": {"dur": "0", "desc": "3"}}."""
    metrics = {}
    for metric in header.split(","):
        name, *params = metric.strip().split(";")
        metrics[name] = {key: value.strip('"') for key, _, value in (p.partition("=") for p in params)}
    return metrics


@pytest.fixture
def timed(settings):
    settings.MIDDLEWARE = [TIMING, *settings.MIDDLEWARE]


def test_it_times_a_send_from_the_first_middleware_to_the_view(timed, client_alice, upstream):
    started = time.perf_counter()
    response = client_alice.post("/c/", {"content": "Timed", "client_id": str(uuid.uuid4())}, htmx=True)
    outside_ms = (time.perf_counter() - started) * 1000
    settle()

    metrics = _metrics(response["Server-Timing"])
    app, cpu, queue = (float(metrics[name]["dur"]) for name in ("app", "cpu", "queue"))
    assert response.status_code == 200
    assert 0 < app <= outside_ms
    assert 0 < cpu <= app + 1  # thread_time ticks more coarsely than the wall clock
    assert 0 <= queue < app, "an empty queue is passed at once"
    assert int(metrics["queue"]["desc"]) >= 1, "a send carries its turn in the queue"


def test_a_request_that_does_not_queue_has_no_turn(timed, client_alice):
    metrics = _metrics(client_alice.get("/")["Server-Timing"])

    assert float(metrics["queue"]["dur"]) == 0
    assert "desc" not in metrics["queue"]


def test_it_is_absent_when_off(settings, client_alice):
    assert TIMING not in settings.MIDDLEWARE

    assert "Server-Timing" not in client_alice.get("/")


def test_the_setting_puts_it_before_the_fair_queue():
    script = "from django.conf import settings; print(*settings.MIDDLEWARE[:2])"

    on, off = (_shell(script, {"CHAT_SERVER_TIMING": value}) for value in ("1", "0"))

    assert on.returncode == 0 and off.returncode == 0, on.stderr + off.stderr
    assert on.stdout.split() == [TIMING, "common.fairness.FairQueueMiddleware"]
    assert off.stdout.split()[0] == "common.fairness.FairQueueMiddleware"


def test_the_wait_for_a_full_queue_shows_as_queue_time(settings):
    settings.CHAT_SENDS_AT_ONCE = 1
    holding, release = threading.Event(), threading.Event()

    @queued
    def send(request):
        if request.POST.get("first"):
            holding.set()
            release.wait(5)
        return HttpResponse("sent")

    def view_step(request):
        fair.process_view(request, send, (), {})
        return send(request)

    fair = FairQueueMiddleware(view_step)
    timing = ServerTimingMiddleware(fair)
    responses = {}
    first = threading.Thread(
        target=lambda: responses.setdefault("first", timing(RequestFactory().post("/", {"first": "1"})))
    )
    first.start()
    assert holding.wait(5)
    second = threading.Thread(target=lambda: responses.setdefault("second", timing(RequestFactory().post("/"))))
    second.start()
    time.sleep(0.08)  # the second send waits behind the first for at least this long
    release.set()
    first.join(5)
    second.join(5)

    firsts, seconds = (_metrics(responses[name]["Server-Timing"]) for name in ("first", "second"))
    waited, app = float(seconds["queue"]["dur"]), float(seconds["app"]["dur"])
    assert 75 <= waited <= app
    assert float(seconds["cpu"]["dur"]) < waited, "waiting costs no CPU"
    assert float(firsts["queue"]["dur"]) < 75
    assert (firsts["queue"]["desc"], seconds["queue"]["desc"]) == ("1", "2")


def test_a_streaming_response_gets_the_time_until_its_headers_leave():
    produced = []

    def body():
        time.sleep(0.05)
        produced.append(True)
        yield b"late"

    timing = ServerTimingMiddleware(lambda request: StreamingHttpResponse(body()))
    response = timing(RequestFactory().get("/"))

    assert not produced, "the body is not produced before the headers"
    assert float(_metrics(response["Server-Timing"])["app"]["dur"]) < 50
    assert re.fullmatch(r"app;dur=[\d.]+, cpu;dur=[\d.]+, queue;dur=[\d.]+", response["Server-Timing"])
