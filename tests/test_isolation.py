"""Every URL that takes a conversation or message id answers 404 to anyone but the owner."""

import pytest
from django.test import Client

from api.tokens import token_create
from conversations.models import Conversation, Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def alices_chat(alice):
    conversation = Conversation.objects.create(owner=alice, model="m", title="Alice's secret plans")
    question = Message.objects.create(conversation=conversation, role="user", content="the secret")
    failed = Message.objects.create(
        conversation=conversation, role="assistant", status="error", error="boom", parent=question
    )
    return conversation, failed


def _urls(conversation, message):
    base = f"/c/{conversation.pk}"
    return [
        ("get", f"{base}/", {}),
        ("post", f"{base}/messages/", {"content": "hijack"}),
        ("get", f"{base}/messages/{message.pk}/stream/", {}),
        ("post", f"{base}/messages/{message.pk}/retry/", {}),
        ("post", f"{base}/messages/{message.pk}/regenerate/", {}),
        ("post", f"{base}/messages/{message.pk}/stop/", {}),
        ("post", f"{base}/messages/{message.parent_id}/edit/", {"content": "hijack"}),
        ("post", f"{base}/messages/{message.pk}/show/", {}),
        ("post", f"{base}/settings/", {"settings-system_prompt": "pwned"}),
        ("get", f"{base}/settings/", {}),
    ]


URL_COUNT = 10


@pytest.mark.parametrize("index", range(URL_COUNT))
@pytest.mark.parametrize("htmx", [False, True])
def test_another_user_gets_404_and_changes_nothing(client_bob, alices_chat, upstream, index, htmx):
    conversation, failed = alices_chat
    method, url, data = _urls(conversation, failed)[index]

    response = getattr(client_bob, method)(url, data, htmx=htmx)

    assert response.status_code == 404
    assert b"secret" not in response.content
    conversation.refresh_from_db()
    failed.refresh_from_db()
    assert conversation.system_prompt == "" and conversation.messages.count() == 2
    assert (failed.status, failed.stop_requested) == ("error", False)
    assert upstream.completion_requests == []


@pytest.mark.parametrize("index", range(URL_COUNT))
def test_anonymous_people_are_sent_to_sign_in(anon_client, alices_chat, index):
    conversation, failed = alices_chat
    method, url, data = _urls(conversation, failed)[index]

    response = getattr(anon_client, method)(url, data)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_a_message_id_from_another_conversation_is_404(client_alice, alice, alices_chat):
    conversation, _ = alices_chat
    other = Conversation.objects.create(owner=alice, model="m")
    foreign = Message.objects.create(conversation=other, role="assistant", status="error")

    response = client_alice.get(f"/c/{conversation.pk}/messages/{foreign.pk}/stream/")

    assert response.status_code == 404


def test_the_sidebar_shows_only_my_conversations(client_bob, alices_chat):
    response = client_bob.get("/")

    assert b"Alice's secret plans" not in response.content
    assert b"Alice&#x27;s secret plans" not in response.content


def test_a_post_without_the_csrf_token_is_refused(client_alice, alices_chat):
    conversation, _ = alices_chat

    response = client_alice.post(f"/c/{conversation.pk}/messages/", {"content": "x"}, headers={"X-CSRFToken": "bad"})

    assert response.status_code == 403
    assert conversation.messages.count() == 2


def test_views_refuse_the_wrong_method(client_alice, alices_chat):
    conversation, _ = alices_chat

    assert client_alice.get(f"/c/{conversation.pk}/messages/").status_code == 405
    assert client_alice.get("/c/").status_code == 405


def test_sign_in_and_sign_out_work_through_the_real_forms(anon_client, alice):
    token = anon_client.csrf_token()
    response = anon_client.post(
        "/accounts/login/",
        {"username": "alice", "password": "correct-horse-battery-staple", "csrfmiddlewaretoken": token},
    )
    assert (response.status_code, response["Location"]) == (302, "/")
    assert anon_client.get("/").status_code == 200

    response = anon_client.post("/accounts/logout/")
    assert (response.status_code, response["Location"]) == (302, "/accounts/login/")
    assert anon_client.get("/").status_code == 302


def test_a_wrong_password_shows_an_error(anon_client, alice):
    token = anon_client.csrf_token()

    response = anon_client.post(
        "/accounts/login/", {"username": "alice", "password": "nope", "csrfmiddlewaretoken": token}
    )

    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_an_htmx_request_after_the_session_ended_redirects_the_whole_page(anon_client, alices_chat):
    conversation, _ = alices_chat
    page = f"http://testserver/c/{conversation.pk}/"

    response = anon_client.post(
        f"/c/{conversation.pk}/messages/", {"content": "x"}, htmx=True, headers={"HX-Current-URL": page}
    )

    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/accounts/login/?next=/c/{conversation.pk}/"
    assert conversation.messages.count() == 2


# --- The API at /v1/: no id of a request reaches another person's data -------------------


def test_the_api_takes_no_conversation_or_message_id(alices_chat, bob, upstream):
    conversation, failed = alices_chat
    _, token = token_create(owner=bob, name="bob's script")
    client = Client(enforce_csrf_checks=True)
    base = {"model": "mistralai/mistral-tiny", "messages": [{"role": "user", "content": "show me"}]}

    for extra in ({"conversation_id": conversation.pk}, {"parent_message_id": failed.pk}, {"user": "alice"}):
        response = client.post(
            "/v1/chat/completions",
            {**base, **extra, "store": True},
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert b"secret" not in response.content

    # The one field OpenAI names `user` is information only: everything stays bob's.
    assert conversation.messages.count() == 2
    assert Conversation.objects.filter(owner=bob).count() == 1
    assert all(request.json["messages"] == base["messages"] for request in upstream.completion_requests)


def test_a_stored_api_exchange_is_in_its_owners_sidebar_only(client_alice, client_bob, bob, upstream):
    _, token = token_create(owner=bob, name="bob's notebook", store_history=True)
    client_bob.post(
        "/v1/chat/completions",
        {"model": "mistralai/mistral-tiny", "messages": [{"role": "user", "content": "bob's private question"}]},
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )

    assert "private question" in client_bob.get("/").content.decode()
    assert "private question" not in client_alice.get("/").content.decode()
