"""One turn of the chat, from the click to the usage row: repeated Regenerate and Retry clicks,
the reply's timings, token counts the upstream did not send, and conversations longer than the
model's context window. Against the fake upstream over real HTTP."""

import threading
import time
import uuid

import pytest
from django.db import connection

from conversations import tokens
from conversations.models import Conversation, Message
from providers.models import ChatModel
from tests.conftest import CheckedClient, settle, sse_events
from usage.models import Usage

pytestmark = pytest.mark.django_db(transaction=True)

FULL = "one two three four five six seven eight nine ten eleven twelve"


@pytest.fixture
def chat(alice):
    return Conversation.objects.create(owner=alice, model="mistralai/mistral-tiny")


def _answered(conversation, *, status="complete", content="The first answer.") -> Message:
    """A question with one reply, as the person sees it after a turn."""
    question = Message.objects.create(conversation=conversation, role="user", content="Tell me")
    reply = Message.objects.create(
        conversation=conversation, role="assistant", status=status, content=content, parent=question
    )
    Conversation.objects.filter(pk=conversation.pk).update(current_message=reply)
    return reply


def _click(client, message, action):
    return client.post(f"/c/{message.conversation_id}/messages/{message.pk}/{action}/", htmx=True)


def _clicks_at_once(user, message, action, count=2):
    """`count` browsers of the same person press the same button at the same moment."""
    clients = []
    for _ in range(count):
        client = CheckedClient()
        client.force_login(user)
        client.csrf_token()
        clients.append(client)
    barrier, statuses = threading.Barrier(count), []

    def press(client):
        try:
            barrier.wait()
            statuses.append(_click(client, message, action).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=press, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return statuses


def _replies(message) -> list[Message]:
    return list(Message.objects.filter(parent_id=message.parent_id, role="assistant").order_by("id"))


def _wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


# --- Item 8: a repeated click starts one generation ------------------------------------


def test_two_regenerate_clicks_at_the_same_moment_ask_the_upstream_once(alice, chat, upstream):
    reply = _answered(chat)
    upstream.hang(0.5)  # the first click's reply is still being written when the second arrives

    statuses = _clicks_at_once(alice, reply, "regenerate")
    settle()

    assert statuses == [200, 200]
    assert len(upstream.completion_requests) == 1
    assert len(_replies(reply)) == 2, "one new alternative beside the first answer"


def test_two_retry_clicks_on_a_reply_cut_mid_way_ask_the_upstream_once(alice, chat, upstream):
    cut = _answered(chat, status="error", content="The first half")
    Message.objects.filter(pk=cut.pk).update(error="The connection closed.", error_code="stream_cut")
    upstream.hang(0.5)

    statuses = _clicks_at_once(alice, cut, "retry")
    settle()

    assert statuses == [200, 200]
    assert len(upstream.completion_requests) == 1
    replies = _replies(cut)
    assert len(replies) == 2 and replies[0].content == "The first half", "the partial text stays beside the retry"


def test_a_second_regenerate_while_the_first_is_written_shows_the_reply_being_written(client_alice, chat, upstream):
    reply = _answered(chat)
    upstream.hang(0.5)

    first = _click(client_alice, reply, "regenerate")
    second = _click(client_alice, reply, "regenerate")  # from the page as it was before the first answered
    settle()

    assert (first.status_code, second.status_code) == (200, 200)
    assert len(upstream.completion_requests) == 1
    new = _replies(reply)[-1]
    assert f'id="message-{new.pk}"' in second.content.decode()
    chat.refresh_from_db()
    assert chat.current_message_id == new.pk


def test_a_deliberate_second_regenerate_after_the_first_finished_makes_another_alternative(
    client_alice, chat, upstream
):
    reply = _answered(chat)

    _click(client_alice, reply, "regenerate")
    settle()
    _click(client_alice, reply, "regenerate")
    settle()

    assert len(upstream.completion_requests) == 2
    assert [m.status for m in _replies(reply)] == ["complete"] * 3


# --- Item 13: latency from the request to the last byte, and time to first text -------


def _send(client, conversation, content="Tell me"):
    data = {"content": content, "client_id": str(uuid.uuid4())}
    return client.post(f"/c/{conversation.pk}/messages/", data, htmx=True)


def _reply(conversation) -> Message:
    return conversation.messages.filter(role="assistant").latest("id")


def test_a_slow_first_byte_counts_in_the_latency_and_the_time_to_first_text(client_alice, chat, upstream):
    upstream.hang(1.0)  # the upstream's headers and first text come after a second

    _send(client_alice, chat)
    settle()

    reply = _reply(chat)
    assert reply.status == "complete"
    assert reply.first_token_ms >= 1000 and reply.latency_ms >= reply.first_token_ms
    row = Usage.objects.get(message=reply)
    assert (row.latency_ms, row.first_token_ms) == (reply.latency_ms, reply.first_token_ms)
    page = client_alice.get(f"/c/{chat.pk}/").content.decode()
    assert f"{reply.latency_ms} ms" in page and f"first text {reply.first_token_ms} ms" in page


def test_a_slow_whole_reply_counts_in_the_latency_without_streaming(client_alice, chat, upstream, settings):
    settings.CHAT_STREAMING = False
    upstream.hang(1.0)

    _send(client_alice, chat)
    settle()

    reply = _reply(chat)
    assert reply.latency_ms >= 1000 and reply.first_token_ms == reply.latency_ms
    row = Usage.objects.get(message=reply)
    assert (row.latency_ms, row.first_token_ms) == (reply.latency_ms, reply.first_token_ms)


def test_a_stopped_reply_keeps_its_latency(client_alice, chat, upstream):
    upstream.stream(FULL, delay=0.2)
    _send(client_alice, chat)
    reply = _reply(chat)
    _wait_for(lambda: Message.objects.get(pk=reply.pk).content)

    client_alice.post(f"/c/{chat.pk}/messages/{reply.pk}/stop/", htmx=True)
    settle()

    reply.refresh_from_db()
    assert reply.status == "stopped"
    assert reply.latency_ms is not None and reply.latency_ms >= reply.first_token_ms
    row = Usage.objects.get(message=reply)
    assert row.latency_ms == reply.latency_ms and row.first_token_ms == reply.first_token_ms
    assert f"{reply.latency_ms} ms" in client_alice.get(f"/c/{chat.pk}/").content.decode()


# --- Item 14: token counts the upstream did not send are estimated -------------------


def test_a_stopped_reply_counts_estimated_tokens_and_says_so(client_alice, chat, upstream):
    upstream.stream(FULL, delay=0.2)
    _send(client_alice, chat, content="Count to twelve, please")
    reply = _reply(chat)
    _wait_for(lambda: len(Message.objects.get(pk=reply.pk).content) > 8)

    client_alice.post(f"/c/{chat.pk}/messages/{reply.pk}/stop/", htmx=True)
    settle()

    reply.refresh_from_db()
    row = Usage.objects.get(message=reply)
    assert row.status == "stopped" and row.tokens_estimated
    sent = upstream.completion_requests[0].json["messages"]
    assert row.prompt_tokens == tokens.estimate_messages(sent) > 0
    assert row.completion_tokens == tokens.estimate(reply.content) > 0
    assert row.total_tokens == row.prompt_tokens + row.completion_tokens


def test_a_stream_without_usage_is_estimated_and_one_with_usage_is_not(client_alice, chat, upstream):
    upstream.stream(FULL, usage=False)  # llama-cpp-python's server, when streaming
    _send(client_alice, chat)
    settle()
    upstream.stream(FULL)
    _send(client_alice, chat)
    settle()

    without, reported = Usage.objects.order_by("id")
    assert without.tokens_estimated and without.completion_tokens == tokens.estimate(FULL)
    assert not reported.tokens_estimated and (reported.prompt_tokens, reported.total_tokens) == (9, 21)


def test_a_failure_before_any_answer_is_not_estimated(client_alice, chat, upstream):
    upstream.fail(400)

    _send(client_alice, chat)
    settle()

    row = Usage.objects.get()
    assert (row.status, row.total_tokens, row.tokens_estimated) == ("error", 0, False)


def test_the_estimate_stays_above_what_tokenizers_count():
    # No tokenizer is installed: these are the bounds conversations.tokens promises. Real
    # tokenizers give English prose about 4 bytes a token, split every digit (SentencePiece)
    # and give a CJK character 1 or 2 tokens.
    prose = "The quick brown fox jumps over the lazy dog, and then it rests."
    assert tokens.estimate(prose) >= 2 * len(prose.encode()) / 4
    assert tokens.estimate("3.14159265358979") >= len("3.14159265358979")
    assert tokens.estimate("x = [1, 2, 3]; f(x)") >= len("[1,2,3];()=")
    assert tokens.estimate("你好，世界") >= 1.5 * len("你好，世界")
    assert tokens.estimate_messages([{"role": "user", "content": ""}]) > 0


def test_the_usage_page_and_csv_show_the_estimated_rows(client_admin, alice):
    Usage.objects.create(user=alice, model="m", status="stopped", total_tokens=40, tokens_estimated=True)
    Usage.objects.create(user=alice, model="m", status="complete", total_tokens=11, latency_ms=900, first_token_ms=300)

    page = client_admin.get("/admin/usage/usage/").content.decode()
    lines = b"".join(client_admin.get("/admin/usage/usage/export.csv").streaming_content).decode().splitlines()

    assert "Estimated: 40 of these tokens, in 1 call" in page
    assert lines[0].endswith("latency_ms,first_token_ms,tokens_estimated,source,input_price,output_price,cost,currency")
    assert ",40,,,yes,chat," in lines[1] and ",11,900,300,no,chat," in lines[2]


# --- Item 21: a conversation longer than the model's context window ------------------


@pytest.fixture
def small_window():
    return ChatModel.objects.create(model_id="small/model", display_name="Small", context_window=2000)


def _long_conversation(owner, *, turns: int, model: str, system_prompt: str = "Be brief.") -> Conversation:
    conversation = Conversation.objects.create(owner=owner, model=model, system_prompt=system_prompt, max_tokens=300)
    parent = None
    for n in range(turns):
        parent = Message.objects.create(
            conversation=conversation, role="user", content=f"Question {n}: " + "words " * 20, parent=parent
        )
        parent = Message.objects.create(
            conversation=conversation, role="assistant", content=f"Answer {n}: " + "more " * 20, parent=parent
        )
    Conversation.objects.filter(pk=conversation.pk).update(current_message=parent)
    return conversation


def test_a_long_conversation_sends_the_newest_turns_that_fit_and_says_how_many_were_left_out(
    client_alice, alice, upstream, small_window
):
    chat = _long_conversation(alice, turns=200, model="small/model")

    _send(client_alice, chat, content="And the last question?")
    settle()

    sent = upstream.completion_requests[0].json["messages"]
    assert sent[0] == {"role": "system", "content": "Be brief."}
    assert sent[1]["role"] == "user", "the history sent starts with a person's message"
    assert sent[-1] == {"role": "user", "content": "And the last question?"}
    assert tokens.estimate_messages(sent) + 300 <= small_window.context_window
    assert len(sent) > 10, "the window is used, not just the newest message"
    assert [m["content"] for m in sent[1:-1]][-2:] == [
        "Question 199: " + "words " * 20,
        "Answer 199: " + "more " * 20,
    ]
    reply = _reply(chat)
    assert reply.status == "complete"
    omitted = 400 - (len(sent) - 2)
    assert reply.context_omitted == omitted
    page = client_alice.get(f"/c/{chat.pk}/").content.decode()
    assert f"{omitted} earlier messages were not sent to the model" in page


def test_a_conversation_that_fits_is_sent_whole_without_a_notice(client_alice, alice, upstream, small_window):
    chat = _long_conversation(alice, turns=3, model="small/model")

    _send(client_alice, chat)
    settle()

    assert len(upstream.completion_requests[0].json["messages"]) == 1 + 6 + 1
    assert _reply(chat).context_omitted == 0
    assert "not sent to the model" not in client_alice.get(f"/c/{chat.pk}/").content.decode()


def test_a_message_too_long_for_the_window_is_refused_and_nothing_is_sent(client_alice, alice, upstream, small_window):
    chat = _long_conversation(alice, turns=2, model="small/model")
    before = chat.messages.count()

    response = _send(client_alice, chat, content="word " * 2000)

    assert response.status_code == 422
    assert "too long for Small" in response.content.decode()
    assert chat.messages.count() == before, "nothing was stored"
    assert upstream.completion_requests == []


def test_a_reply_whose_question_no_longer_fits_is_labelled_with_retry_and_nothing_is_sent(
    client_alice, alice, upstream, small_window
):
    # The question fitted the model it was sent to; the chat was then moved to a smaller window.
    chat = _long_conversation(alice, turns=1, model="small/model")
    question = Message.objects.create(conversation=chat, role="user", content="word " * 2000)
    failed = Message.objects.create(conversation=chat, role="assistant", status="error", parent=question)
    Conversation.objects.filter(pk=chat.pk).update(current_message=failed)

    _click(client_alice, failed, "retry")
    settle()

    failed.refresh_from_db()
    assert (failed.status, failed.error_code) == ("error", "too_long")
    assert "context window" in failed.error and failed.can_retry
    assert upstream.completion_requests == []


def test_a_model_missing_from_the_catalogue_is_sent_the_whole_branch(client_alice, alice, upstream):
    chat = _long_conversation(alice, turns=50, model="unlisted/model")

    _send(client_alice, chat)
    settle()

    assert len(upstream.completion_requests[0].json["messages"]) == 1 + 100 + 1


def test_the_rendered_notice_reaches_the_stream_done_event(client_alice, alice, upstream, small_window):
    chat = _long_conversation(alice, turns=200, model="small/model")
    _send(client_alice, chat)
    settle()
    reply = _reply(chat)

    done = sse_events(client_alice.get(f"/c/{chat.pk}/messages/{reply.pk}/stream/"))[-1][2]

    assert f"{reply.context_omitted} earlier messages were not sent to the model" in done["html"]
