"""Upstream resilience through the whole chat flow, against the fake upstream over real HTTP:
retries before any reply text (never after), Retry-After, the circuit breaker and the budget
of a turn. Every failure keeps the person's message and labels the reply with Retry."""

import time
import uuid

import pytest

from conversations.models import Conversation, Message
from providers.upstream import UpstreamConfig, UpstreamError, retries
from tests.conftest import settle

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def chat(alice):
    return Conversation.objects.create(owner=alice, model="mistralai/mistral-tiny")


@pytest.fixture(autouse=True)
def _policy(settings):
    # Explicit here, whatever the defaults become: two retries, waits of milliseconds, a breaker
    # that needs more failures than one turn makes.
    settings.AIMLAPI_RETRIES = 2
    settings.AIMLAPI_RETRY_BASE_DELAY = 0.01
    settings.AIMLAPI_RETRY_MAX_DELAY = 0.05
    settings.AIMLAPI_RETRY_AFTER_MAX = 3
    settings.AIMLAPI_TURN_BUDGET = 30
    settings.AIMLAPI_BREAKER_FAILURES = 10


def _send(client, conversation, content="Are you there?") -> Message:
    response = client.post(
        f"/c/{conversation.pk}/messages/", {"content": content, "client_id": str(uuid.uuid4())}, htmx=True
    )
    assert response.status_code == 200
    return conversation.messages.filter(role="assistant").latest("id")


def _finished(reply: Message, timeout: float = 15.0) -> Message:
    settle(timeout)
    reply.refresh_from_db()
    return reply


def _assert_kept_and_labelled(conversation, reply: Message, code: str) -> None:
    """The person's message is stored; the reply is an error with a reason and Retry."""
    reply.refresh_from_db()
    asked = reply.parent
    assert (asked.role, asked.conversation_id) == ("user", conversation.pk)
    assert conversation.messages.filter(role="user", content=asked.content).count() == 1
    assert (reply.status, reply.error_code) == ("error", code)
    assert reply.error and reply.can_retry


def test_a_503_then_a_reply_gives_one_reply_after_two_requests(client_alice, chat, upstream):
    upstream.fail(503, {"error": {"message": "Model unavailable"}})

    reply = _finished(_send(client_alice, chat))

    assert (reply.status, reply.content) == ("complete", "Echo: Are you there?")
    assert len(upstream.completion_requests) == 2
    assert chat.messages.count() == 2


def test_a_connection_dropped_before_any_answer_is_tried_again(client_alice, chat, upstream):
    upstream.drop()

    reply = _finished(_send(client_alice, chat))

    assert (reply.status, reply.content) == ("complete", "Echo: Are you there?")
    assert len(upstream.completion_requests) == 2


def test_a_429_is_tried_again_after_its_retry_after(client_alice, chat, upstream):
    upstream.fail(429, {"message": "Slow down", "statusCode": "429"}, headers={"Retry-After": "1"})

    reply = _finished(_send(client_alice, chat))

    assert reply.status == "complete"
    first, second = upstream.completion_requests
    assert 1.0 <= second.at - first.at < 1.5, "the second request must come after Retry-After, not much later"


def test_a_retry_after_longer_than_the_cap_fails_at_once_and_says_when(client_alice, chat, upstream):
    upstream.fail(429, {"message": "Slow down", "statusCode": "429"}, headers={"Retry-After": "30"})
    started = time.monotonic()

    reply = _finished(_send(client_alice, chat))

    assert time.monotonic() - started < 3, "a Retry-After above AIMLAPI_RETRY_AFTER_MAX is not waited for"
    assert len(upstream.completion_requests) == 1
    _assert_kept_and_labelled(chat, reply, "rate_limited")
    assert "Try again in 30 seconds" in reply.error


def test_it_gives_up_after_the_configured_retries(client_alice, chat, upstream):
    for _ in range(3):
        upstream.fail(502)

    reply = _finished(_send(client_alice, chat))

    assert len(upstream.completion_requests) == 3
    _assert_kept_and_labelled(chat, reply, "server_error")


def test_a_stream_cut_after_the_first_words_is_not_tried_again(client_alice, chat, upstream):
    upstream.stream("one two three four", end="drop")

    reply = _finished(_send(client_alice, chat))

    assert len(upstream.completion_requests) == 1
    _assert_kept_and_labelled(chat, reply, "stream_cut")
    assert reply.content == "one two three four", "the text that arrived is kept"


@pytest.mark.parametrize(("status", "code"), [(400, "bad_request"), (401, "auth"), (500, "server_error")])
def test_errors_that_would_answer_the_same_again_are_not_retried(client_alice, chat, upstream, status, code):
    upstream.fail(status)

    reply = _finished(_send(client_alice, chat))

    assert len(upstream.completion_requests) == 1
    _assert_kept_and_labelled(chat, reply, code)


def test_the_breaker_opens_after_failures_in_a_row_fails_fast_and_closes_after_the_cool_down(
    client_alice, chat, upstream, settings, clock
):
    settings.AIMLAPI_RETRIES = 0
    settings.AIMLAPI_BREAKER_FAILURES = 3
    settings.AIMLAPI_BREAKER_COOLDOWN = 1.0
    for attempt in range(3):
        upstream.fail(503)
        _assert_kept_and_labelled(chat, _finished(_send(client_alice, chat, f"Hello {attempt}?")), "server_error")
    assert len(upstream.completion_requests) == 3

    started = time.monotonic()
    fast = _finished(_send(client_alice, chat))

    assert time.monotonic() - started < 1.0
    assert len(upstream.completion_requests) == 3, "an open breaker sends nothing upstream"
    assert fast.error.startswith(
        "The upstream at " + upstream.base_url.split("/")[2] + " is unavailable; try again in 1 s."
    )
    assert fast.status == "error" and fast.can_retry

    clock.advance(1.1)
    retried = client_alice.post(f"/c/{chat.pk}/messages/{fast.pk}/retry/", htmx=True)
    assert retried.status_code == 200
    fast = _finished(fast)

    assert (fast.status, fast.content) == ("complete", "Echo: Are you there?")
    assert len(upstream.completion_requests) == 4


def test_a_success_starts_the_count_of_failures_again(client_alice, chat, upstream, settings):
    settings.AIMLAPI_RETRIES = 0
    settings.AIMLAPI_BREAKER_FAILURES = 2
    for turn, script in enumerate((lambda: upstream.fail(503), lambda: None, lambda: upstream.fail(503), lambda: None)):
        script()
        _finished(_send(client_alice, chat, f"Turn {turn}"))

    assert len(upstream.completion_requests) == 4
    assert chat.messages.filter(error_code="unavailable").count() == 0


def test_the_turn_budget_bounds_retries_and_their_waits(client_alice, chat, upstream, settings):
    settings.AIMLAPI_TURN_BUDGET = 1.5
    for _ in range(3):
        upstream.fail(429, {"message": "Slow down", "statusCode": "429"}, headers={"Retry-After": "1"})
    started = time.monotonic()

    reply = _finished(_send(client_alice, chat))

    assert time.monotonic() - started < 2.0
    assert len(upstream.completion_requests) == 2, "the third attempt would start after the budget"
    _assert_kept_and_labelled(chat, reply, "budget")
    assert "within the 1.5 seconds allowed" in reply.error


def test_the_turn_budget_bounds_an_upstream_that_does_not_answer(client_alice, chat, upstream, settings):
    settings.AIMLAPI_TURN_BUDGET = 1.0
    upstream.hang(3)
    started = time.monotonic()

    reply = _finished(_send(client_alice, chat))

    assert time.monotonic() - started < 2.5
    _assert_kept_and_labelled(chat, reply, "budget")


def test_stop_ends_the_wait_between_two_attempts(client_alice, chat, upstream):
    upstream.fail(429, {"message": "Slow down", "statusCode": "429"}, headers={"Retry-After": "3"})
    reply = _send(client_alice, chat)
    deadline = time.monotonic() + 5
    while not upstream.completion_requests:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    started = time.monotonic()

    client_alice.post(f"/c/{chat.pk}/messages/{reply.pk}/stop/", htmx=True)
    reply = _finished(reply)

    assert time.monotonic() - started < 1.0, "Stop must not wait for Retry-After"
    assert reply.status == "stopped"
    assert len(upstream.completion_requests) == 1


def test_a_whole_reply_is_retried_the_same_way(client_alice, chat, upstream, settings):
    settings.CHAT_STREAMING = False
    upstream.fail(504)

    reply = _finished(_send(client_alice, chat))

    assert (reply.status, reply.content) == ("complete", "Echo: Are you there?")
    assert len(upstream.completion_requests) == 2
    assert upstream.completion_requests[0].json.get("stream") is None


def test_full_jitter_stays_under_the_exponential_ceiling():
    config = UpstreamConfig(
        base_url="http://127.0.0.1:9/v1",
        api_key="k",
        connect_timeout=1,
        read_timeout=1,
        retries=10,
        retry_base_delay=0.5,
        retry_max_delay=4.0,
    )
    error = UpstreamError("server_error", 503)

    waits = {attempt: [retries.wait(error, attempt, config) for _ in range(200)] for attempt in range(6)}

    for attempt, ceiling in zip(range(6), (0.5, 1.0, 2.0, 4.0, 4.0, 4.0), strict=True):
        assert all(0 <= wait <= ceiling for wait in waits[attempt])
        assert max(waits[attempt]) > ceiling / 2, "full jitter spreads up to the ceiling"
