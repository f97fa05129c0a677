"""The upstream client against the fake upstream over real HTTP."""

import json
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from providers import wording
from providers.upstream import UpstreamConfig, UpstreamError, chat_completion, open_stream
from tests.conftest import API_KEY

MESSAGES = [{"role": "user", "content": "Hi"}]


def _config(upstream, **overrides):
    values = {"base_url": upstream.base_url, "api_key": API_KEY, "connect_timeout": 2.0, "read_timeout": 5.0}
    return UpstreamConfig(**{**values, **overrides})


def _said(error, upstream, **overrides) -> str:
    """What a person reads about `error` from the upstream `_config` describes."""
    return wording.explain(error, _config(upstream, **overrides))


def _call(upstream, params=None, **overrides):
    return chat_completion(
        messages=MESSAGES, model="mistralai/mistral-tiny", params=params, config=_config(upstream, **overrides)
    )


def test_it_returns_the_reply_with_finish_reason_usage_and_id(upstream):
    upstream.reply("Hello there!", finish_reason="length")

    completion = _call(upstream)

    assert completion.content == "Hello there!"
    assert completion.finish_reason == "length"
    assert completion.model == "mistralai/mistral-tiny"
    assert completion.response_id.startswith("gen-fake-")
    assert completion.usage == {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
    assert completion.latency_ms >= 0


def test_it_sends_the_bearer_key_the_model_the_messages_and_only_the_set_parameters(upstream):
    _call(upstream, params={"temperature": 0.5, "top_p": None, "max_tokens": 64})

    [request] = upstream.completion_requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.json == {
        "model": "mistralai/mistral-tiny",
        "messages": MESSAGES,
        "temperature": 0.5,
        "max_tokens": 64,
    }


def test_it_reuses_the_connection_between_calls(upstream):
    _call(upstream)
    _call(upstream)
    first, second = upstream.completion_requests
    assert first.client_port == second.client_port, "the second call should reuse the pooled connection"


def test_it_tolerates_a_reply_without_usage(upstream):
    upstream.reply("No usage here", usage=False)

    assert _call(upstream).usage == {}


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"temperature": 2.5}, "temperature must be between 0.0 and 2.0"),
        ({"top_p": 0.05}, "top_p must be between 0.1 and 1.0"),
        ({"max_tokens": 0}, "max_tokens must be between 1 and 32000"),
        ({"max_tokens": 1.5}, "max_tokens must be a whole number"),
        ({"temperature": "hot"}, "temperature must be a number"),
        ({"seed": 1}, "Unknown generation parameter 'seed'"),
    ],
)
def test_it_refuses_parameters_outside_the_documented_bounds_without_calling(upstream, params, problem):
    with pytest.raises(ValueError, match=problem):
        _call(upstream, params=params)
    assert upstream.completion_requests == []


def test_it_explains_a_missing_key_without_calling(upstream):
    with pytest.raises(UpstreamError) as caught:
        _call(upstream, api_key="")

    assert caught.value.code == "no_key"
    assert "AIMLAPI_API_KEY" in _said(caught.value, upstream, api_key="")
    assert ".env" in _said(caught.value, upstream, api_key="")
    assert upstream.completion_requests == []


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable", "words"),
    [
        (401, {"error": {"message": "Invalid API key", "type": "auth"}}, "auth", False, "refused the API key"),
        (
            403,
            {"message": "No credits", "statusCode": "403", "path": "/v1/chat/completions"},
            "forbidden",
            False,
            "no credits left",
        ),
        (404, {"error": {"message": "Model not found"}}, "not_found", False, "does not know this model"),
        (422, {"error": {"message": "messages: field required"}}, "bad_request", False, "rejected the request"),
        (400, {"message": "Body validation error", "statusCode": "400"}, "bad_request", False, "rejected the request"),
        (500, {"error": {"message": "boom"}}, "server_error", True, "having trouble"),
        (502, {"message": "Partner failure", "statusCode": "502"}, "server_error", True, "having trouble"),
        (503, {"error": {"message": "Model unavailable"}}, "server_error", True, "having trouble"),
    ],
)
def test_it_turns_each_error_status_into_a_readable_error(upstream, status, body, code, retryable, words):
    upstream.fail(status, body)

    with pytest.raises(UpstreamError) as caught:
        _call(upstream)

    error = caught.value
    assert (error.code, error.retryable, error.status) == (code, retryable, status)
    assert words in _said(error, upstream)
    assert f"HTTP {status}" in _said(error, upstream)
    assert "{" not in _said(error, upstream), "the raw body must not be shown"


def test_it_reads_retry_after_on_429(upstream):
    upstream.fail(429, {"message": "Too many requests", "statusCode": "429"}, headers={"Retry-After": "17"})

    with pytest.raises(UpstreamError) as caught:
        _call(upstream)

    assert caught.value.code == "rate_limited"
    assert caught.value.retryable is True
    assert caught.value.retry_after == 17
    assert "Try again in 17 seconds" in _said(caught.value, upstream)


def test_it_reads_retry_after_given_as_a_date(upstream):
    upstream.fail(429, headers={"Retry-After": format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)})

    with pytest.raises(UpstreamError) as caught:
        _call(upstream)

    assert 85 <= caught.value.retry_after <= 91


def test_an_unlisted_status_is_still_readable(upstream):
    upstream.fail(418, {"error": {"message": "I'm a teapot"}})

    with pytest.raises(UpstreamError) as caught:
        _call(upstream)

    assert (caught.value.code, _said(caught.value, upstream)) == (
        "unexpected_status",
        f"The upstream at {upstream.base_url.split('/')[2]} answered with an unexpected status. "
        "(HTTP 418: I'm a teapot)",
    )


def test_it_never_repeats_the_key_even_when_the_upstream_echoes_it(upstream):
    upstream.fail(401, {"error": {"message": f"Incorrect API key provided: {API_KEY}"}})

    with pytest.raises(UpstreamError) as caught:
        _call(upstream)

    assert API_KEY not in _said(caught.value, upstream)
    assert "[redacted]" in _said(caught.value, upstream)


def test_it_reports_a_timeout(upstream):
    upstream.hang(1.5)

    with pytest.raises(UpstreamError) as caught:
        _call(upstream, read_timeout=0.3)

    assert caught.value.code == "timeout"
    assert "did not answer within 0.3 seconds" in _said(caught.value, upstream, read_timeout=0.3)


def test_it_reports_a_refused_connection(upstream):
    with pytest.raises(UpstreamError) as caught:
        _call(upstream, base_url="http://127.0.0.1:9/v1")

    assert caught.value.code == "connection"
    assert "Could not connect to the upstream at 127.0.0.1:9." in _said(
        caught.value, upstream, base_url="http://127.0.0.1:9/v1"
    )


def test_it_reports_a_dropped_connection(upstream):
    upstream.drop()

    with pytest.raises(UpstreamError) as caught:
        _call(upstream)

    assert caught.value.code in {"connection", "request"}
    assert caught.value.retryable is True


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        (b"<html>Bad gateway</html>", "text/html", "not JSON"),
        (json.dumps({"id": "x", "object": "chat.completion"}).encode(), "application/json", "without any choices"),
        (json.dumps({"choices": []}).encode(), "application/json", "without any choices"),
        (json.dumps(["not", "an", "object"]).encode(), "application/json", "unexpected JSON"),
        (json.dumps({"error": {"message": "Upstream overloaded"}}).encode(), "application/json", "Upstream overloaded"),
    ],
)
def test_it_reports_a_body_it_cannot_use(upstream, body, content_type, words):
    upstream.raw(200, body, content_type=content_type)

    with pytest.raises(UpstreamError) as caught:
        _call(upstream)

    assert words in _said(caught.value, upstream)


def test_a_reply_without_text_content_counts_as_empty(upstream):
    upstream.raw(
        200,
        json.dumps({"id": "x", "choices": [{"index": 0, "finish_reason": "content_filter", "message": {}}]}).encode(),
    )

    completion = _call(upstream)

    assert (completion.content, completion.finish_reason) == ("", "content_filter")


# --- streamed completions ------------------------------------------------------------------


def _open_stream(upstream, **overrides):
    return open_stream(messages=MESSAGES, model="mistralai/mistral-tiny", config=_config(upstream, **overrides))


USAGE = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}


def _sse(*events: str, newline: str = "\n") -> bytes:
    return "".join(f"{event}{newline}{newline}" for event in events).encode()


def _chunk(content=None, finish_reason=None, **extra) -> str:
    delta = {} if content is None else {"content": content}
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    return "data: " + json.dumps({"id": "gen-1", "model": "m-1", "choices": [choice], **extra})


def test_a_stream_yields_each_piece_and_ends_with_finish_reason_and_usage(upstream):
    upstream.stream(["Hel", "lo"], finish_reason="length")

    with _open_stream(upstream) as stream:
        pieces = list(stream)

    assert pieces == ["Hel", "lo"]
    assert (stream.finish_reason, stream.cancelled) == ("length", False)
    assert stream.response_id.startswith("gen-fake-")
    assert stream.usage == {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}
    assert stream.latency_ms >= stream.first_token_ms >= 0


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_stream_skips_keep_alive_comments_and_empty_deltas(upstream, newline):
    body = _sse(
        ": keep-alive",
        _chunk("A"),
        "event: ping",
        _chunk(),
        _chunk("B", finish_reason="stop"),
        "data: " + json.dumps({"choices": [], "usage": USAGE}),
        "data: [DONE]",
        newline=newline,
    )
    upstream.raw(200, body, content_type="text/event-stream")

    with _open_stream(upstream) as stream:
        assert list(stream) == ["A", "B"]

    assert (stream.finish_reason, stream.model, stream.usage["total_tokens"]) == ("stop", "m-1", 3)


def test_a_stream_without_done_is_an_error_that_keeps_what_arrived(upstream):
    upstream.raw(200, _sse(_chunk("Half")), content_type="text/event-stream")
    pieces = []

    with pytest.raises(UpstreamError) as raised, _open_stream(upstream) as stream:
        pieces.extend(stream)

    assert pieces == ["Half"]
    assert (raised.value.code, raised.value.retryable) == ("stream_cut", True)


def test_an_error_chunk_in_a_200_stream_is_a_readable_error_without_the_key(upstream):
    error = {"error": {"message": f"Overloaded for key {API_KEY}", "type": "server_error"}}
    upstream.raw(200, _sse(_chunk("Par"), "data: " + json.dumps(error)), content_type="text/event-stream")

    with pytest.raises(UpstreamError) as raised, _open_stream(upstream) as stream:
        list(stream)

    assert raised.value.code == "upstream_error"
    assert "Overloaded for key [redacted]" in _said(raised.value, upstream)


def test_an_error_status_fails_before_any_text(upstream):
    upstream.fail(503)

    with pytest.raises(UpstreamError) as raised:
        _open_stream(upstream)

    assert (raised.value.code, raised.value.status) == ("server_error", 503)


def test_closing_a_stream_from_another_thread_ends_it_at_once(upstream):
    upstream.stream("a b c d e f g h i j", delay=0.3)
    pieces = []

    with _open_stream(upstream) as stream:
        for piece in stream:
            pieces.append(piece)
            if len(pieces) == 2:
                threading.Timer(0.05, stream.close).start()

    assert pieces == ["a ", "b "]
    assert stream.cancelled
