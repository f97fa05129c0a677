"""The chat flow through the views, with the fake upstream over real HTTP."""

import re
import uuid

import pytest

from conversations.models import Conversation, Message
from tests.conftest import settle, sse_events

# Replies are generated in background threads with their own database connections, so the
# test's data must be committed for them to see it.
pytestmark = pytest.mark.django_db(transaction=True)


def _start(client, content="Hello", *, htmx=True, **extra):
    return client.post("/c/", {"content": content, "client_id": str(uuid.uuid4()), **extra}, htmx=htmx)


def _send(client, conversation, content="And then?", *, htmx=True, client_id=None):
    data = {"content": content, "client_id": str(client_id or uuid.uuid4())}
    return client.post(f"/c/{conversation.pk}/messages/", data, htmx=htmx)


def _messages(conversation):
    return list(conversation.messages.values_list("role", "status", "content"))


def _stream_url(html: str) -> str:
    return re.search(r'data-stream-url="([^"]+)"', html).group(1)


def _page(client, conversation) -> str:
    return client.get(f"/c/{conversation.pk}/").content.decode()


def test_anonymous_people_are_sent_to_sign_in(anon_client):
    response = anon_client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_the_home_page_offers_a_new_chat_and_lists_my_conversations(client_alice, alice):
    Conversation.objects.create(owner=alice, model="m", title="Trip to Lisbon")

    response = client_alice.get("/")

    assert response.status_code == 200
    assert b'id="composer"' in response.content
    assert b"Trip to Lisbon" in response.content
    assert b"htmx" in response.content  # served from static/, no CDN
    assert b"cdn" not in response.content.lower()


def test_it_starts_a_conversation_and_shows_the_reply_in_place(client_alice, alice, upstream):
    upstream.reply("Hi Alice, how can I help?")

    response = _start(client_alice, "Hello model")

    conversation = Conversation.objects.get(owner=alice)
    reply = conversation.messages.get(role="assistant")
    assert conversation.title == "Hello model"
    assert conversation.model == "mistralai/mistral-tiny"
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#chat-pane"
    assert response["HX-Push-Url"] == f"/c/{conversation.pk}/"
    html = response.content.decode()
    assert "<html" not in html, "an htmx request gets a fragment, not a page"
    assert 'id="chat-pane"' in html
    assert "Hello model" in html
    assert _stream_url(html) == f"/c/{conversation.pk}/messages/{reply.pk}/stream/"
    assert 'id="conversation-list" class="conversation-list" hx-boost="true"' in html
    assert 'hx-swap-oob="true"' in html

    events = sse_events(client_alice.get(_stream_url(html)))

    assert "".join(data for event, _, data in events if event == "text") == "Hi Alice, how can I help?"
    assert events[-1][0] == "done" and "Hi Alice, how can I help?" in events[-1][2]["html"]
    assert _messages(conversation) == [
        ("user", "complete", "Hello model"),
        ("assistant", "complete", "Hi Alice, how can I help?"),
    ]


def test_a_plain_post_redirects_to_the_full_page(client_alice, alice, upstream):
    response = _start(client_alice, "No JavaScript here", htmx=False)

    conversation = Conversation.objects.get(owner=alice)
    assert response.status_code == 302
    assert response["Location"] == f"/c/{conversation.pk}/"
    settle()
    page = client_alice.get(response["Location"])
    assert b"<html" in page.content
    assert b"Echo: No JavaScript here" in page.content


def test_a_reply_in_a_conversation_is_a_fragment_with_a_fresh_composer(client_alice, alice, upstream):
    conversation = Conversation.objects.create(owner=alice, model="mistralai/mistral-tiny")

    response = _send(client_alice, conversation, "Second question")

    html = response.content.decode()
    reply = conversation.messages.get(role="assistant")
    assert response.status_code == 200
    assert "<html" not in html
    assert "Second question" in html and f'id="message-{reply.pk}"' in html
    assert '<form id="composer"' in html and 'hx-swap-oob="true"' in html
    assert 'name="client_id"' in html
    assert f'name="parent" value="{reply.pk}"' in html, "the next message answers this reply"
    settle()
    assert _messages(conversation)[-1] == ("assistant", "complete", "Echo: Second question")


def test_a_plain_post_in_a_conversation_redirects_back_to_it(client_alice, alice, upstream):
    conversation = Conversation.objects.create(owner=alice, model="m")

    response = _send(client_alice, conversation, htmx=False)

    assert (response.status_code, response["Location"]) == (302, f"/c/{conversation.pk}/")


def test_it_sends_the_whole_conversation_with_the_system_prompt_and_parameters(client_alice, alice, upstream):
    conversation = Conversation.objects.create(
        owner=alice, model="mistralai/mistral-tiny", system_prompt="Be brief.", temperature=0.2, max_tokens=100
    )
    _send(client_alice, conversation, "One")
    settle()
    _send(client_alice, conversation, "Two")
    settle()

    body = upstream.completion_requests[-1].json
    assert body == {
        "model": "mistralai/mistral-tiny",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "One"},
            {"role": "assistant", "content": "Echo: One"},
            {"role": "user", "content": "Two"},
        ],
        "temperature": 0.2,
        "max_tokens": 100,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_the_page_shows_usage_latency_and_a_cut_off_note(client_alice, alice, upstream):
    upstream.reply("A long answer that was cut", finish_reason="length")
    _start(client_alice)
    settle()
    conversation = Conversation.objects.get(owner=alice)
    reply = conversation.messages.get(role="assistant")

    page = client_alice.get(f"/c/{conversation.pk}/").content.decode()

    assert reply.finish_reason == "length" and reply.total_tokens == 15 and reply.upstream_id
    assert "15 tokens" in page
    assert "cut off at the length limit" in page


def test_model_output_is_escaped_never_rendered_as_html(client_alice, alice, upstream):
    upstream.reply('<script>alert(1)</script><img src=x onerror="alert(2)">')
    _start(client_alice)
    settle()
    conversation = Conversation.objects.get(owner=alice)
    reply = conversation.messages.get(role="assistant")

    page = _page(client_alice, conversation)
    done = sse_events(client_alice.get(f"/c/{conversation.pk}/messages/{reply.pk}/stream/"))[-1][2]["html"]

    for html in (page, done):
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in html


@pytest.mark.parametrize(
    ("script", "words"),
    [
        (lambda u: u.fail(401, {"error": {"message": "Invalid key"}}), "refused the API key"),
        (
            lambda u: u.fail(429, {"message": "Slow down", "statusCode": "429"}, headers={"Retry-After": "30"}),
            "Try again in 30 seconds",
        ),
        (lambda u: u.fail(500), "having trouble"),
        (lambda u: u.raw(200, b"not json", content_type="text/plain"), "not JSON"),
        (lambda u: u.raw(200, b'{"id": "x"}'), "without any choices"),
        (lambda u: u.hang(2), "did not answer within 0.5 seconds"),
    ],
)
def test_an_upstream_failure_keeps_the_message_shows_why_and_retry_succeeds(
    client_alice, alice, upstream, settings, script, words
):
    settings.AIMLAPI_TIMEOUT = 0.5
    conversation = Conversation.objects.create(owner=alice, model="mistralai/mistral-tiny")
    script(upstream)

    response = _send(client_alice, conversation, "Please answer")
    settle()

    assert response.status_code == 200
    html = _page(client_alice, conversation)
    assert words in html
    assert "Retry" in html
    user_message, failed = conversation.messages.all()
    assert (user_message.role, user_message.status, user_message.content) == ("user", "complete", "Please answer")
    assert (failed.role, failed.status) == ("assistant", "error")
    assert words in failed.error

    # The retried reply starts a moment later, so the response is rendered while it is still
    # being written (an instant echo could finish first on a busy machine, and then the
    # response rightly carries no stream URL).
    upstream.hang(0.2)
    retried = client_alice.post(f"/c/{conversation.pk}/messages/{failed.pk}/retry/", htmx=True)
    settle()

    assert retried.status_code == 200
    assert _stream_url(retried.content.decode()) == f"/c/{conversation.pk}/messages/{failed.pk}/stream/"
    assert "Echo: Please answer" in _page(client_alice, conversation)
    assert _messages(conversation) == [
        ("user", "complete", "Please answer"),
        ("assistant", "complete", "Echo: Please answer"),
    ]
    assert upstream.completion_requests[-1].json["messages"] == [{"role": "user", "content": "Please answer"}]


def test_a_refused_connection_is_an_error_bubble_not_a_500(client_alice, alice, settings):
    settings.AIMLAPI_BASE_URL = "http://127.0.0.1:9/v1"
    conversation = Conversation.objects.create(owner=alice, model="m")

    response = _send(client_alice, conversation, "Anyone?")
    settle()

    assert response.status_code == 200
    assert "Could not connect to the upstream at 127.0.0.1:9" in _page(client_alice, conversation)
    assert conversation.messages.filter(role="user", content="Anyone?").exists()


def test_without_a_key_it_stores_the_message_and_says_how_to_add_one(client_alice, alice, upstream, settings):
    settings.AIMLAPI_API_KEY = ""

    response = _start(client_alice, "Is anyone there?")
    settle()

    conversation = Conversation.objects.get(owner=alice)
    html = _page(client_alice, conversation)
    assert response.status_code == 200
    assert "No API key is configured for the upstream at " + upstream.base_url.split("/")[2] in html
    assert "AIMLAPI_API_KEY" in html and ".env" in html
    assert upstream.completion_requests == []
    failed = conversation.messages.get(role="assistant")
    assert (failed.status, failed.error_code) == ("error", "no_key")

    settings.AIMLAPI_API_KEY = "test-canary-key-must-never-leak-7f3a9c"
    client_alice.post(f"/c/{conversation.pk}/messages/{failed.pk}/retry/", htmx=True)
    settle()

    failed.refresh_from_db()
    assert (failed.status, failed.content) == ("complete", "Echo: Is anyone there?")


def test_a_plain_retry_redirects_to_the_message(client_alice, alice, upstream, settings):
    settings.AIMLAPI_RETRIES = 0
    upstream.fail(503)
    _start(client_alice)
    settle()
    conversation = Conversation.objects.get(owner=alice)
    failed = conversation.messages.get(role="assistant")
    assert failed.status == "error"

    response = client_alice.post(f"/c/{conversation.pk}/messages/{failed.pk}/retry/")
    settle()

    assert (response.status_code, response["Location"]) == (302, f"/c/{conversation.pk}/")
    failed.refresh_from_db()
    assert failed.status == "complete"


def test_a_reply_that_is_not_failed_cannot_be_retried(client_alice, alice, upstream):
    _start(client_alice)
    settle()
    conversation = Conversation.objects.get(owner=alice)
    reply = conversation.messages.get(role="assistant")

    response = client_alice.post(f"/c/{conversation.pk}/messages/{reply.pk}/retry/", htmx=True)

    assert response.status_code == 409
    assert "Only a failed reply can be retried." in response.content.decode()
    assert len(upstream.completion_requests) == 1


def test_a_reply_abandoned_by_a_dead_worker_can_be_retried(client_alice, alice, upstream):
    conversation = Conversation.objects.create(owner=alice, model="m")
    question = Message.objects.create(conversation=conversation, role="user", content="Lost?")
    stuck = Message.objects.create(
        conversation=conversation, role="assistant", status=Message.Status.PENDING, parent=question
    )
    Message.objects.filter(pk=stuck.pk).update(updated_at="2020-01-01T00:00:00Z")

    page = _page(client_alice, conversation)
    assert "interrupted" in page and "Retry" in page
    assert "data-stream-url" not in page

    client_alice.post(f"/c/{conversation.pk}/messages/{stuck.pk}/retry/", htmx=True)
    settle()

    stuck.refresh_from_db()
    assert (stuck.status, stuck.content) == ("complete", "Echo: Lost?")


def test_a_double_submit_stores_the_message_once(client_alice, alice, upstream):
    conversation = Conversation.objects.create(owner=alice, model="m")
    client_id = uuid.uuid4()

    first = _send(client_alice, conversation, "Only once", client_id=client_id)
    second = _send(client_alice, conversation, "Only once", client_id=client_id)
    settle()

    assert first.status_code == 200 and second.status_code == 200
    assert second["HX-Reswap"] == "none"
    assert _messages(conversation) == [("user", "complete", "Only once"), ("assistant", "complete", "Echo: Only once")]
    assert len(upstream.completion_requests) == 1


def test_a_double_submit_of_a_first_message_starts_one_conversation(client_alice, alice, upstream):
    data = {"content": "Start once", "client_id": str(uuid.uuid4())}

    first = client_alice.post("/c/", data)
    second = client_alice.post("/c/", data)
    settle()

    conversation = Conversation.objects.get(owner=alice)
    assert first["Location"] == second["Location"] == f"/c/{conversation.pk}/"
    assert conversation.messages.count() == 2
    assert len(upstream.completion_requests) == 1


def test_someone_elses_client_id_is_refused_and_changes_nothing(client_alice, client_bob, alice, bob, upstream):
    client_id = uuid.uuid4()
    alices = Conversation.objects.create(owner=alice, model="m")
    bobs = Conversation.objects.create(owner=bob, model="m")
    _send(client_alice, alices, "Alice's words", client_id=client_id)

    response = _send(client_bob, bobs, "Bob's words", client_id=client_id)

    assert response.status_code == 422
    assert bobs.messages.count() == 0


@pytest.mark.parametrize("content", ["", "   \n  "])
def test_an_empty_message_gets_a_clear_error_and_changes_nothing(client_alice, alice, upstream, content):
    conversation = Conversation.objects.create(owner=alice, model="m")

    response = _send(client_alice, conversation, content)

    assert response.status_code == 422
    assert response["HX-Retarget"] == "#composer"
    assert b"Type a message first." in response.content
    assert conversation.messages.count() == 0
    assert upstream.completion_requests == []


def test_a_too_long_message_gets_a_clear_error_keeps_the_text_and_changes_nothing(
    client_alice, alice, upstream, settings
):
    settings.CHAT_MAX_MESSAGE_CHARS = 10

    response = _start(client_alice, "x" * 11)

    assert response.status_code == 422
    assert b"This message is too long: 11 characters, and the limit is 10." in response.content
    assert b"xxxxxxxxxxx</textarea>" in response.content
    assert not Conversation.objects.exists()
    assert upstream.completion_requests == []


def test_a_plain_invalid_post_renders_the_full_page_with_the_error(client_alice, alice):
    response = client_alice.post("/c/", {"content": ""})

    assert response.status_code == 422
    assert b"<html" in response.content and b"Type a message first." in response.content


def test_settings_can_be_given_with_the_first_message(client_alice, alice, upstream):
    _start(client_alice, "Hi", **{"settings-system_prompt": "Be a pirate.", "settings-top_p": "0.9"})
    settle()

    conversation = Conversation.objects.get(owner=alice)
    assert (conversation.system_prompt, conversation.top_p) == ("Be a pirate.", 0.9)
    body = upstream.completion_requests[0].json
    assert body["messages"][0] == {"role": "system", "content": "Be a pirate."}
    assert body["top_p"] == 0.9


def test_settings_are_saved_with_htmx(client_alice, alice):
    conversation = Conversation.objects.create(owner=alice, model="m")
    data = {"settings-system_prompt": "Short answers.", "settings-temperature": "1.5", "settings-max_tokens": "256"}

    response = client_alice.post(f"/c/{conversation.pk}/settings/", data, htmx=True)

    assert response.status_code == 200
    assert b"Saved." in response.content
    conversation.refresh_from_db()
    assert (conversation.system_prompt, conversation.temperature, conversation.top_p, conversation.max_tokens) == (
        "Short answers.",
        1.5,
        None,
        256,
    )


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("temperature", "2.1", "less than or equal to 2.0"),
        ("top_p", "0", "greater than or equal to 0.1"),
        ("max_tokens", "0", "greater than or equal to 1"),
        ("max_tokens", "40000", "less than or equal to 32000"),
        ("temperature", "warm", "Enter a number"),
    ],
)
def test_a_setting_out_of_bounds_gets_a_form_error_and_changes_nothing(client_alice, alice, field, value, error):
    conversation = Conversation.objects.create(owner=alice, model="m", temperature=0.7)

    response = client_alice.post(f"/c/{conversation.pk}/settings/", {f"settings-{field}": value}, htmx=True)

    assert response.status_code == 422
    assert error in response.content.decode()
    conversation.refresh_from_db()
    assert (conversation.temperature, conversation.top_p, conversation.max_tokens) == (0.7, None, None)


def test_the_sidebar_lists_the_most_recent_conversation_first(client_alice, alice, upstream):
    older = Conversation.objects.create(owner=alice, model="m", title="Older")
    Conversation.objects.create(owner=alice, model="m", title="Newer")
    _send(client_alice, older, "Bump")

    html = client_alice.get("/").content.decode()

    assert html.index("Older") < html.index("Newer")


def test_healthz_answers_without_sign_in(anon_client):
    response = anon_client.get("/healthz")

    assert (response.status_code, response.content) == (200, b"ok")
