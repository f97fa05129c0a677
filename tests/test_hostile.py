"""Hostile input: each request gets the right status and a readable message, and changes nobody's data."""

import re
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from api.tokens import token_create
from conversations.models import Conversation, Folder, Message
from prompts.models import Prompt
from tests.xss_corpus import PAYLOADS

pytestmark = pytest.mark.django_db(transaction=True)


def _snapshot() -> list:
    """Every stored row that a person's request could change."""
    users = get_user_model().objects.order_by("pk").values("pk", "username", "password", "is_active", "is_staff")
    return [
        list(users),
        list(Conversation.objects.order_by("pk").values()),
        list(Message.objects.order_by("pk").values()),
        list(Prompt.objects.order_by("pk").values()),
        list(Folder.objects.order_by("pk").values()),
    ]


@pytest.fixture
def chats(alice, bob):
    """A conversation each for alice and bob, each with a finished turn and a failed reply, in a folder, and a
    prompt each."""
    made = {}
    for owner in (alice, bob):
        folder = Folder.objects.create(owner=owner, name=f"{owner.username}'s secret folder")
        conversation = Conversation.objects.create(
            owner=owner, model="m", title=f"{owner.username}'s secret plans", folder=folder
        )
        question = Message.objects.create(conversation=conversation, role="user", content="the secret")
        reply = Message.objects.create(
            conversation=conversation, role="assistant", status="error", error="boom", parent=question
        )
        conversation.current_message = reply
        conversation.save()
        made[owner.username] = (conversation, question, reply)
        Prompt.objects.create(owner=owner, title="secret prompt", command="secret", body="the secret {{x}}")
    return made


@pytest.fixture
def unchanged(chats, upstream):
    """Fails the test if the request under test stored, changed or sent anything."""
    before = _snapshot()
    yield
    assert _snapshot() == before, "a hostile request changed stored data"
    assert upstream.completion_requests == [], "a hostile request reached the upstream"


def _readable(response, *words: str) -> None:
    text = response.content.decode()
    shown = re.findall(r'class="form-error"[^>]*>([^<]*)|<li>([^<]*)</li>|<p>([^<]*)</p>', text)
    for word in words:
        assert word in text, f"{word!r} is not in the response; it shows: {shown or text[:200]}"


# --- Other people's ids in every URL ------------------------------------------------------


def _named_patterns() -> list[tuple[str, URLPattern]]:
    """(namespaced name, pattern) of every URL of ours; the admin has its own permission checks."""
    found = []

    def walk(patterns, namespace):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace != "admin":
                    walk(pattern.url_patterns, pattern.namespace or namespace)
            elif pattern.name:
                found.append((f"{namespace}:{pattern.name}" if namespace else pattern.name, pattern))

    walk(get_resolver().url_patterns, "")
    return found


# Route parameters of our URLs and which of alice's objects fills them. A URL with any other
# parameter fails the sweep below until it is added here, so no new URL escapes it.
ALICE_IDS = {
    "pk": lambda chat: chat[0].pk,
    "message_pk": lambda chat: chat[2].pk,
    "prompt_pk": lambda chat: Prompt.objects.get(owner=chat[0].owner_id).pk,
    "folder_pk": lambda chat: chat[0].folder_id,
}
OTHER_PARAMETERS = {"fmt": "json"}
# Open to anyone who has the address, on purpose; tested where they are built.
PUBLIC = {"conversations:shared": "tests/test_history.py: revoked and unknown tokens are 404"}


def _alice_urls(chats) -> list[str]:
    urls = []
    for name, pattern in _named_patterns():
        parameters = set(pattern.pattern.converters)
        if name in PUBLIC:
            continue
        assert parameters <= set(ALICE_IDS) | set(OTHER_PARAMETERS), f"{name}: add its parameters to ALICE_IDS"
        if parameters & set(ALICE_IDS):
            kwargs = {key: ALICE_IDS[key](chats["alice"]) for key in parameters & set(ALICE_IDS)}
            kwargs.update({key: OTHER_PARAMETERS[key] for key in parameters & set(OTHER_PARAMETERS)})
            urls.append(reverse(name, kwargs=kwargs))
    return urls


def test_every_url_with_an_id_answers_404_to_another_user(client_bob, chats, unchanged):
    urls = _alice_urls(chats)
    assert len(urls) >= 19

    for url in urls:
        for htmx in (False, True):
            get = client_bob.get(url, htmx=htmx)
            post = client_bob.post(
                url, {"content": "hijack", "settings-system_prompt": "pwned", "name": "pwned"}, htmx=htmx
            )
            # Each URL answers 404 to the method it accepts; the other method may be refused first.
            assert sorted([get.status_code, post.status_code]) in ([404, 404], [404, 405]), url
            for response in (get, post):
                assert b"secret" not in response.content, url


# --- Forms ---------------------------------------------------------------------------------

MALFORMED = [
    ({}, "Type a message first"),
    ({"content": "   "}, "Type a message first"),
    ({"content": "hi", "parent": "abc"}, "Enter a whole number"),
    ({"content": "hi", "parent": "-4"}, "greater than or equal to 1"),
    ({"content": "hi", "client_id": "not-a-uuid"}, "Enter a valid UUID"),
]


@pytest.mark.parametrize(("data", "message"), MALFORMED)
def test_a_malformed_message_form_is_refused_with_the_reason(client_alice, chats, unchanged, data, message):
    conversation = chats["alice"][0]

    response = client_alice.post(f"/c/{conversation.pk}/messages/", data, htmx=True)

    assert response.status_code == 422
    _readable(response, message)


def test_a_parent_from_another_users_conversation_is_refused(client_alice, chats, unchanged):
    conversation = chats["alice"][0]
    bobs_reply = chats["bob"][2]

    response = client_alice.post(
        f"/c/{conversation.pk}/messages/", {"content": "hi", "parent": bobs_reply.pk, "client_id": uuid.uuid4()}
    )

    assert response.status_code == 422


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("settings-temperature", "NaN", "Enter a number"),
        ("settings-temperature", "1e309", "Enter a number"),
        ("settings-temperature", "3", "less than or equal to 2"),
        ("settings-max_tokens", "-1", "greater than or equal to"),
        ("settings-top_p", "abc", "Enter a number"),
    ],
)
def test_out_of_range_settings_are_refused_with_the_reason(client_alice, chats, unchanged, field, value, message):
    conversation = chats["alice"][0]

    response = client_alice.post(f"/c/{conversation.pk}/settings/", {field: value}, htmx=True)

    assert response.status_code == 422
    _readable(response, message)


def test_a_json_body_where_a_form_is_expected_is_refused(client_alice, chats, unchanged):
    conversation = chats["alice"][0]

    response = client_alice.post(
        f"/c/{conversation.pk}/messages/", '{"content": "hi"}', content_type="application/json", htmx=True
    )

    assert response.status_code == 422
    _readable(response, "Type a message first")


def test_a_broken_multipart_body_is_a_400(client_alice, chats, unchanged):
    conversation = chats["alice"][0]

    response = client_alice.post(
        f"/c/{conversation.pk}/messages/", b"--x\r\nbroken", content_type="multipart/form-data; boundary=", htmx=True
    )

    assert response.status_code == 400
    _readable(response, "could not be understood")


# --- Size ----------------------------------------------------------------------------------


def test_a_message_over_the_length_limit_is_refused_and_not_stored(client_alice, chats, unchanged, settings):
    conversation = chats["alice"][0]

    response = client_alice.post(
        f"/c/{conversation.pk}/messages/", {"content": "x" * (settings.CHAT_MAX_MESSAGE_CHARS + 1)}, htmx=True
    )

    assert response.status_code == 422
    _readable(response, "too long", "Nothing was sent")


@pytest.mark.parametrize("htmx", [False, True])
def test_a_body_over_the_request_limit_is_a_413(client_alice, chats, unchanged, settings, htmx):
    conversation = chats["alice"][0]

    response = client_alice.post(
        f"/c/{conversation.pk}/messages/", {"content": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)}, htmx=htmx
    )

    assert response.status_code == 413
    _readable(response, "too large")
    assert response["Content-Type"].startswith("text/plain" if htmx else "text/html")


# --- Encoding ------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"content=%FF%FE", b"content=caf%C3", b"content=a%00b", b"cont%FFent=x"])
def test_a_form_that_is_not_utf8_text_is_a_400(client_alice, chats, unchanged, body):
    conversation = chats["alice"][0]

    response = client_alice.post(
        f"/c/{conversation.pk}/messages/", body, content_type="application/x-www-form-urlencoded", htmx=True
    )

    assert response.status_code == 400
    _readable(response, "not valid text")


@pytest.mark.parametrize("query", ["q=%FF", "q=a%00"])
def test_a_query_that_is_not_utf8_text_is_a_400(client_alice, chats, unchanged, query):
    response = client_alice.get(f"/c/list/?{query}", htmx=True)

    assert response.status_code == 400


def test_text_in_other_scripts_and_emoji_is_stored_exactly(client_alice, chats, upstream):
    conversation = chats["alice"][0]
    text = "Grüße, 你好, مرحبا, 🙂‍↔️ and a zero-width\u200bjoiner"

    response = client_alice.post(
        f"/c/{conversation.pk}/messages/", {"content": text, "parent": chats["alice"][2].parent_id}
    )

    assert response.status_code == 302
    assert conversation.messages.filter(role="user", content=text).exists()


# --- Methods and CSRF ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_unsupported_methods_are_a_405_with_a_reason(client_alice, chats, unchanged, method):
    conversation, _, reply = chats["alice"]

    token = client_alice.csrf_token()

    for url in (f"/c/{conversation.pk}/messages/", f"/c/{conversation.pk}/messages/{reply.pk}/retry/", "/c/"):
        response = client_alice.generic(method, url, headers={"X-CSRFToken": token})
        assert response.status_code == 405, url
        assert "POST" in response["Allow"]
        _readable(response, "not allowed")


@pytest.mark.parametrize("token", [None, "", "x" * 64])
def test_a_post_without_a_valid_csrf_token_is_a_403(client_alice, chats, unchanged, token):
    conversation = chats["alice"][0]
    client_alice.csrf_token()
    headers = {} if token is None else {"X-CSRFToken": token}

    response = super(type(client_alice), client_alice).post(
        f"/c/{conversation.pk}/messages/", {"content": "hi"}, headers=headers
    )

    assert response.status_code == 403
    _readable(response, "Reload the page")


def test_a_post_from_another_origin_is_a_403(client_alice, chats, unchanged):
    conversation = chats["alice"][0]

    response = client_alice.post(
        f"/c/{conversation.pk}/messages/", {"content": "hi"}, headers={"Origin": "https://evil.example"}, secure=True
    )

    assert response.status_code == 403


# --- Markup --------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [p for p in PAYLOADS if "<" in p][:12])
def test_markup_typed_by_a_person_is_stored_as_typed_and_shown_as_text(client_alice, chats, upstream, payload):
    conversation = chats["alice"][0]

    client_alice.post(f"/c/{conversation.pk}/messages/", {"content": payload, "parent": chats["alice"][2].parent_id})
    client_alice.post(f"/c/{conversation.pk}/settings/", {"settings-system_prompt": payload})
    page = client_alice.get(f"/c/{conversation.pk}/").content.decode()

    assert conversation.messages.filter(role="user", content=payload).exists()
    assert payload not in page, "a person's markup reached the page unescaped"


# --- The API at /v1/ -------------------------------------------------------------------------


@pytest.fixture
def bobs_token(bob):
    return token_create(owner=bob, name="hostile")[1]


def _api_post(token: str, body: bytes, content_type: str = "application/json"):
    client = Client(enforce_csrf_checks=True)
    return client.post(
        "/v1/chat/completions", body, content_type=content_type, headers={"Authorization": f"Bearer {token}"}
    )


HOSTILE_BODIES = [
    (b"not json", "must be JSON"),
    (b"\xff\xfe\x00garbage", "must be JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"model": "mistralai/mistral-tiny"}', "non-empty list"),
    (b'{"model": "mistralai/mistral-tiny", "messages": "hi"}', "non-empty list"),
    (b'{"model": "mistralai/mistral-tiny", "messages": [{"role": "tool", "content": "x"}]}', "needs a role"),
    (b'{"model": "mistralai/mistral-tiny", "messages": [{"role": "user", "content": 5}]}', "must be text"),
    (b'{"model": "mistralai/mistral-tiny", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}', "true"),
    (b'{"model": 7, "messages": [{"role": "user", "content": "x"}]}', "Name a model"),
    (b'{"model": "mistralai/mistral-tiny", "messages": [{"role": "user", "content": "x"}], "n": 3}', "n=1"),
    (b'{"model": "mistralai/mistral-tiny", "messages": [{"role": "user", "content": "x"}], "top_p": "1"}', "number"),
]


@pytest.mark.parametrize(("body", "message"), HOSTILE_BODIES)
def test_a_malformed_api_body_is_a_400_in_openai_shape_and_changes_nothing(bobs_token, unchanged, body, message):
    response = _api_post(bobs_token, body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and message in error["message"]


def test_an_api_body_over_the_limits_is_refused(bobs_token, unchanged, settings):
    settings.CHAT_MAX_MESSAGE_CHARS = 10
    long = b'{"model": "mistralai/mistral-tiny", "messages": [{"role": "user", "content": "%s"}]}' % (b"x" * 11)
    assert _api_post(bobs_token, long).json()["error"]["code"] == "message_too_long"

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    huge = _api_post(bobs_token, long.replace(b"x" * 11, b"x" * 2000))
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "request_too_large"


@pytest.mark.parametrize("payload", PAYLOADS[:12])
def test_hostile_model_output_leaves_the_api_as_json_text_and_reaches_the_page_escaped(
    bobs_token, bob, upstream, payload
):
    upstream.reply(payload)
    body = b'{"model": "mistralai/mistral-tiny", "messages": [{"role": "user", "content": "hi"}], "store": true}'

    response = _api_post(bobs_token, body)

    assert response["Content-Type"] == "application/json"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.json()["choices"][0]["message"]["content"] == payload
    stored = Conversation.objects.filter(owner=bob).exclude(title__endswith="secret plans").get()
    page = Client()
    page.force_login(bob)
    assert payload not in page.get(f"/c/{stored.pk}/").content.decode()
