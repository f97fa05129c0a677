"""Streamed replies end to end: generation in the background, the SSE stream, Stop, and the
message tree behind Regenerate and Edit, against the fake upstream over real HTTP."""

import json
import re
import threading
import time
import uuid

import pytest
from django.utils import timezone

from conversations.models import Conversation, Message
from tests.conftest import is_generating, settle, sse_events

pytestmark = pytest.mark.django_db(transaction=True)

FULL = "one two three four five six seven eight nine ten eleven twelve"


@pytest.fixture
def chat(alice):
    return Conversation.objects.create(owner=alice, model="mistralai/mistral-tiny")


def _send(client, conversation, content="Tell me", **extra):
    data = {"content": content, "client_id": str(uuid.uuid4()), **extra}
    return client.post(f"/c/{conversation.pk}/messages/", data, htmx=True)


def _reply(conversation) -> Message:
    return conversation.messages.filter(role="assistant").latest("id")


def _stream(client, message, **headers):
    return client.get(f"/c/{message.conversation_id}/messages/{message.pk}/stream/", headers=headers)


def _text(events) -> str:
    return "".join(data for event, _, data in events if event == "text")


def _wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def test_it_assembles_the_stream_in_order_and_stores_usage_and_finish_reason(client_alice, chat, upstream):
    upstream.stream(["Hel", "lo", ", wor", "ld", "!"])

    _send(client_alice, chat)
    settle()

    reply = _reply(chat)
    assert (reply.status, reply.content, reply.finish_reason) == ("complete", "Hello, world!", "stop")
    assert (reply.prompt_tokens, reply.completion_tokens, reply.total_tokens) == (9, 2, 11)
    assert reply.upstream_id.startswith("gen-fake-") and reply.model == "mistralai/mistral-tiny"
    assert reply.first_token_ms is not None and reply.latency_ms >= reply.first_token_ms
    body = upstream.completion_requests[0].json
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_the_stream_replays_a_finished_reply_and_never_calls_the_upstream_again(client_alice, chat, upstream):
    upstream.stream(FULL)
    _send(client_alice, chat)
    settle()
    reply = _reply(chat)

    first, second = sse_events(_stream(client_alice, reply)), sse_events(_stream(client_alice, reply))

    assert _text(first) == _text(second) == FULL
    assert first[-1][0] == "done" and FULL in first[-1][2]["html"]
    assert len(upstream.completion_requests) == 1


def test_a_reconnect_resumes_after_the_last_event_id(client_alice, chat, upstream):
    upstream.stream(FULL)
    _send(client_alice, chat)
    settle()
    reply = _reply(chat)

    resumed = sse_events(_stream(client_alice, reply, **{"Last-Event-ID": "8"}))
    by_query = sse_events(client_alice.get(f"/c/{chat.pk}/messages/{reply.pk}/stream/?offset=8"))

    assert _text(resumed) == _text(by_query) == FULL[8:]
    assert resumed[0][1] == str(len(FULL)), "the event id is the length of the text so far"


def test_a_running_reply_is_replayed_then_followed_piece_by_piece(client_alice, chat, upstream):
    upstream.stream(FULL, delay=0.03)
    _send(client_alice, chat)
    reply = _reply(chat)
    _wait_for(lambda: is_generating(reply.pk))

    events = sse_events(_stream(client_alice, reply))

    texts = [data for event, _, data in events if event == "text"]
    assert "".join(texts) == FULL
    assert len(texts) >= 6, "pieces are relayed as they arrive, not all at the end"
    assert [int(event_id) for event, event_id, _ in events if event == "text"] == sorted(
        int(event_id) for event, event_id, _ in events if event == "text"
    )
    assert len(upstream.completion_requests) == 1


def test_a_reply_generated_by_another_process_is_followed_from_the_database(client_alice, chat, settings):
    settings.CHAT_STREAM_SAVE_INTERVAL_MS = 20
    question = Message.objects.create(conversation=chat, role="user", content="Hi")
    reply = Message.objects.create(conversation=chat, role="assistant", status="pending", parent=question)

    def other_process():
        for text, status in [("Hel", "streaming"), ("Hello wor", "streaming"), ("Hello world", "complete")]:
            time.sleep(0.1)
            Message.objects.filter(pk=reply.pk).update(content=text, status=status, updated_at=timezone.now())

    writer = threading.Thread(target=other_process)
    writer.start()
    events = sse_events(_stream(client_alice, reply))
    writer.join()

    assert [data for event, _, data in events if event == "text"] == ["Hel", "lo wor", "ld"]
    assert "Hello world" in events[-1][2]["html"] and "is-complete" in events[-1][2]["html"]


def test_the_reply_is_saved_while_it_streams_not_only_at_the_end(client_alice, chat, upstream, settings):
    settings.CHAT_STREAM_SAVE_INTERVAL_MS = 30
    upstream.stream(FULL, delay=0.05)
    _send(client_alice, chat)
    reply = _reply(chat)

    _wait_for(lambda: Message.objects.filter(pk=reply.pk, status="streaming").exclude(content="").exists())

    partial = Message.objects.get(pk=reply.pk).content
    assert FULL.startswith(partial) and partial != FULL
    settle()
    reply.refresh_from_db()
    assert (reply.status, reply.content) == ("complete", FULL)


def test_the_stream_is_sent_unbuffered(client_alice, chat, upstream):
    _send(client_alice, chat)
    settle()

    response = _stream(client_alice, _reply(chat))

    assert response.streaming
    assert response["Content-Type"] == "text/event-stream"
    assert response["X-Accel-Buffering"] == "no"
    assert "no-cache" in response["Cache-Control"]
    assert not response.has_header("Content-Length") and not response.has_header("Content-Encoding")
    b"".join(response.streaming_content)


@pytest.mark.parametrize(
    ("end", "code", "words"),
    [
        ("drop", "stream_cut", "closed before the reply was complete"),
        ("error", "upstream_error", "Fake failure mid-stream"),
        ("hang", "timeout", "did not answer within 0.5 seconds"),
    ],
)
def test_a_failure_mid_stream_keeps_the_partial_text_and_retry_adds_a_full_reply(
    client_alice, chat, upstream, settings, end, code, words
):
    settings.AIMLAPI_TIMEOUT = 0.5
    upstream.stream("The first part ", end=end, hang=2)
    _send(client_alice, chat, "Explain")
    settle()
    failed = _reply(chat)
    assert (failed.status, failed.content, failed.error_code) == ("error", "The first part ", code)
    assert words in failed.error
    page = client_alice.get(f"/c/{chat.pk}/").content.decode()
    assert "The first part" in page and "The reply is incomplete." in page and "Retry" in page

    response = client_alice.post(f"/c/{chat.pk}/messages/{failed.pk}/retry/", htmx=True)
    settle()

    assert response.status_code == 200
    failed.refresh_from_db()
    retried = _reply(chat)
    assert (failed.status, failed.content) == ("error", "The first part "), "the partial reply is kept"
    assert (retried.status, retried.content, retried.parent_id) == ("complete", "Echo: Explain", failed.parent_id)
    assert upstream.completion_requests[-1].json["messages"] == [{"role": "user", "content": "Explain"}]


def test_stop_keeps_the_partial_reply_and_ends_the_upstream_call_at_once(client_alice, chat, upstream):
    upstream.stream(FULL, delay=0.2)  # 2.4 s in all
    _send(client_alice, chat)
    reply = _reply(chat)
    _wait_for(lambda: Message.objects.get(pk=reply.pk).content)
    started = time.monotonic()

    response = client_alice.post(f"/c/{chat.pk}/messages/{reply.pk}/stop/", htmx=True)
    settle()

    assert response.status_code == 204
    assert time.monotonic() - started < 1.0, "Stop closes the upstream connection instead of reading on"
    reply.refresh_from_db()
    assert reply.status == "stopped"
    assert reply.content and FULL.startswith(reply.content) and reply.content != FULL
    assert "Stopped." in sse_events(_stream(client_alice, reply))[-1][2]["html"]


def test_stop_before_the_upstream_answers_stops_the_reply_at_once(client_alice, chat, upstream):
    upstream.hang(1.5)
    _send(client_alice, chat)
    reply = _reply(chat)
    _wait_for(lambda: upstream.completion_requests)
    started = time.monotonic()

    client_alice.post(f"/c/{chat.pk}/messages/{reply.pk}/stop/", htmx=True)
    events = sse_events(_stream(client_alice, reply))

    assert time.monotonic() - started < 1.0, "neither Stop nor the stream waits for the upstream"
    assert "Stopped before any text arrived." in events[-1][2]["html"]
    settle()  # the upstream's late answer is dropped
    reply.refresh_from_db()
    assert (reply.status, reply.content) == ("stopped", "")


def test_a_stop_pressed_on_another_process_is_seen_at_the_next_save(client_alice, chat, upstream, settings):
    settings.CHAT_STREAM_SAVE_INTERVAL_MS = 50
    upstream.stream(FULL, delay=0.1)
    _send(client_alice, chat)
    reply = _reply(chat)
    _wait_for(lambda: Message.objects.get(pk=reply.pk).content)

    # What message_stop does in a process that is not generating this reply.
    Message.objects.filter(pk=reply.pk).update(stop_requested=True)
    settle()

    reply.refresh_from_db()
    assert reply.status == "stopped" and reply.content != FULL


def test_a_browser_that_goes_away_does_not_stop_the_reply(client_alice, chat, upstream):
    upstream.stream(FULL, delay=0.02)
    _send(client_alice, chat)
    reply = _reply(chat)
    _wait_for(lambda: is_generating(reply.pk))

    response = _stream(client_alice, reply)
    next(iter(response.streaming_content))
    response.close()  # the tab was closed
    settle()

    reply.refresh_from_db()
    assert (reply.status, reply.content) == ("complete", FULL)


def test_sending_while_a_reply_is_being_written_is_refused_and_changes_nothing(client_alice, chat, upstream):
    upstream.stream(FULL, delay=0.05)
    _send(client_alice, chat)

    response = _send(client_alice, chat, "Too soon")

    assert response.status_code == 422
    assert "Wait for the reply to finish, or press Stop." in response.content.decode()
    assert not chat.messages.filter(content="Too soon").exists()


def test_regenerate_adds_an_alternative_and_sends_the_same_conversation_again(client_alice, chat, upstream):
    upstream.reply("First answer")
    _send(client_alice, chat, "Pick a number")
    settle()
    first = _reply(chat)
    upstream.reply("Second answer")

    response = client_alice.post(f"/c/{chat.pk}/messages/{first.pk}/regenerate/", htmx=True)
    settle()

    second = _reply(chat)
    html = response.content.decode()
    assert response.status_code == 200 and 'id="message-list"' in html
    assert second.parent_id == first.parent_id and second.pk != first.pk
    assert ">2/2<" in html
    first.refresh_from_db()
    assert (first.status, first.content) == ("complete", "First answer"), "nothing is overwritten"
    assert (second.status, second.content) == ("complete", "Second answer")
    first_body, second_body = (request.json for request in upstream.completion_requests)
    assert second_body["messages"] == first_body["messages"] == [{"role": "user", "content": "Pick a number"}]


def test_edit_sends_the_edited_branch_and_keeps_the_original(client_alice, chat, upstream):
    _send(client_alice, chat, "Hello")
    settle()
    _send(client_alice, chat, "What is 2+2?")
    settle()
    original = chat.messages.get(content="What is 2+2?")

    response = client_alice.post(f"/c/{chat.pk}/messages/{original.pk}/edit/", {"content": "What is 3+3?"}, htmx=True)
    settle()

    assert response.status_code == 200
    edited = chat.messages.get(content="What is 3+3?")
    assert edited.parent_id == original.parent_id and original.content == "What is 2+2?"
    assert upstream.completion_requests[-1].json["messages"] == [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Echo: Hello"},
        {"role": "user", "content": "What is 3+3?"},
    ]
    page = client_alice.get(f"/c/{chat.pk}/").content.decode()
    assert "What is 3+3?" in page and "Echo: What is 3+3?" in page and "What is 2+2?</div>" not in page


def test_an_empty_edit_gets_a_clear_error_and_changes_nothing(client_alice, chat, upstream):
    _send(client_alice, chat, "Hello")
    settle()
    original = chat.messages.get(role="user")

    response = client_alice.post(f"/c/{chat.pk}/messages/{original.pk}/edit/", {"content": "  "}, htmx=True)

    assert response.status_code == 409
    assert "Type a message first." in response.content.decode()
    assert chat.messages.count() == 2 and len(upstream.completion_requests) == 1


def test_switching_alternatives_changes_what_is_shown_and_what_is_sent_next(client_alice, chat, upstream):
    upstream.reply("Red")
    _send(client_alice, chat, "Name a colour")
    settle()
    red = _reply(chat)
    upstream.reply("Blue")
    client_alice.post(f"/c/{chat.pk}/messages/{red.pk}/regenerate/", htmx=True)
    settle()

    response = client_alice.post(f"/c/{chat.pk}/messages/{red.pk}/show/", htmx=True)

    html = response.content.decode()
    assert ">1/2<" in html and "<p>Red</p>" in html and "<p>Blue</p>" not in html
    assert f'name="parent" value="{red.pk}"' in html, "the composer answers the branch on screen"
    _send(client_alice, chat, "Why?", parent=str(red.pk))
    settle()
    assert upstream.completion_requests[-1].json["messages"] == [
        {"role": "user", "content": "Name a colour"},
        {"role": "assistant", "content": "Red"},
        {"role": "user", "content": "Why?"},
    ]


def test_an_unfinished_reply_of_a_dead_worker_streams_as_interrupted(client_alice, chat):
    question = Message.objects.create(conversation=chat, role="user", content="Hi")
    stuck = Message.objects.create(
        conversation=chat, role="assistant", status="streaming", content="Half a rep", parent=question
    )
    Message.objects.filter(pk=stuck.pk).update(updated_at="2020-01-01T00:00:00Z")

    events = sse_events(_stream(client_alice, stuck, **{"Last-Event-ID": "10"}))

    assert [event for event, _, _ in events] == ["done"]
    assert "Half a rep" in events[0][2]["html"] and "Retry" in events[0][2]["html"]


def test_without_streaming_whole_replies_still_work(client_alice, chat, upstream, settings):
    settings.CHAT_STREAMING = False
    upstream.reply("One piece")

    _send(client_alice, chat)
    settle()

    assert "stream" not in upstream.completion_requests[0].json
    reply = _reply(chat)
    assert (reply.status, reply.content, reply.total_tokens) == ("complete", "One piece", 11)
    assert _text(sse_events(_stream(client_alice, reply))) == "One piece"


def test_an_upstream_that_ignores_stream_true_is_read_as_a_whole_reply(client_alice, chat, upstream):
    body = upstream.completion_body("Not streamed", "stop", True, model="mistralai/mistral-tiny")
    upstream.raw(200, json.dumps(body).encode())

    _send(client_alice, chat)
    settle()

    reply = _reply(chat)
    assert (reply.status, reply.content, reply.finish_reason) == ("complete", "Not streamed", "stop")


def test_the_page_of_a_streaming_reply_shows_its_text_so_far_and_follows_from_there(client_alice, chat):
    question = Message.objects.create(conversation=chat, role="user", content="Hi")
    Message.objects.create(conversation=chat, role="assistant", status="streaming", content="Héllo", parent=question)

    page = client_alice.get(f"/c/{chat.pk}/").content.decode()

    body = re.search(r'class="message__body" data-stream-url="[^"]+" data-stream-offset="(\d+)">([^<]*)</div>', page)
    assert body.groups() == ("5", "Héllo")
    assert "data-stop" in page
