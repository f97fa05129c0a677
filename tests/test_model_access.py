"""Model access by group: a model the catalogue keeps for some groups is offered to their members
(and superusers) only, in the chat's settings and at /v1/models, and a message to it from anyone
else is refused before anything is stored or sent upstream."""

import json
import uuid

import pytest
from django.contrib.auth.models import Group

from api.tokens import token_create
from conversations.models import Conversation, Message
from providers import catalogue
from providers.models import ChatModel
from tests.conftest import CheckedClient, settle

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "team/secret-model"
REFUSED = "is kept for some groups on this site"


@pytest.fixture
def research(alice):
    group = Group.objects.create(name="research")
    alice.groups.add(group)
    return group


@pytest.fixture
def models(research):
    tiny, _ = ChatModel.objects.get_or_create(
        model_id="mistralai/mistral-tiny", defaults={"display_name": "Mistral Tiny"}
    )
    secret = ChatModel.objects.create(model_id=SECRET, display_name="Team Secret", groups_only=True)
    secret.groups.add(research)
    return tiny, secret


def _send(client, conversation, content="Hello?"):
    data = {"content": content, "client_id": str(uuid.uuid4())}
    return client.post(f"/c/{conversation.pk}/messages/", data, htmx=True)


def _option(model_id: str) -> str:
    return f'<option value="{model_id}"'


# --- What is offered ---------------------------------------------------------------------
def test_the_settings_panel_lists_a_kept_model_only_to_its_groups(client_alice, client_bob, bob, models):
    bobs_chat = Conversation.objects.create(owner=bob, model="mistralai/mistral-tiny")

    for_alice = client_alice.get("/").content.decode()
    for_bob = client_bob.get("/").content.decode()
    bobs_page = client_bob.get(f"/c/{bobs_chat.pk}/").content.decode()

    assert _option(SECRET) in for_alice
    assert _option(SECRET) not in for_bob and "Team Secret" not in for_bob
    assert _option(SECRET) not in bobs_page
    assert _option("mistralai/mistral-tiny") in for_bob, "a model open to everyone stays offered"


def test_a_chat_whose_model_is_kept_from_its_owner_says_so_in_its_settings(client_bob, bob, models):
    chat = Conversation.objects.create(owner=bob, model=SECRET)

    page = client_bob.get(f"/c/{chat.pk}/").content.decode()

    assert "Team Secret (not for your account)" in page


def test_superusers_may_use_every_model(admin_user, bob, models):
    assert catalogue.may_use(admin_user, SECRET)
    assert SECRET in {model.model_id for model in catalogue.enabled_chat_models(admin_user)}
    assert not catalogue.may_use(bob, SECRET)


def test_a_new_chat_of_someone_outside_the_default_models_groups_starts_on_a_model_they_may_use(
    client_bob, bob, research, upstream, models
):
    tiny, _ = models
    tiny.groups_only = True
    tiny.save()
    tiny.groups.add(research)
    ChatModel.objects.create(model_id="open/model", display_name="An Open Model")

    page = client_bob.get("/").content.decode()
    response = client_bob.post("/c/", {"content": "Hi", "client_id": str(uuid.uuid4())}, htmx=True)
    settle()

    assert '<option value="open/model" selected>' in page and _option("mistralai/mistral-tiny") not in page
    assert response.status_code == 200
    assert Conversation.objects.get(owner=bob).model == "open/model"
    assert [request.json["model"] for request in upstream.completion_requests] == ["open/model"]


# --- Sending -----------------------------------------------------------------------------
def test_a_group_member_may_start_a_chat_with_a_kept_model(client_alice, alice, upstream, models):
    response = client_alice.post(
        "/c/", {"content": "Hi", "client_id": str(uuid.uuid4()), "settings-model": SECRET}, htmx=True
    )
    settle()

    assert response.status_code == 200
    assert Conversation.objects.get(owner=alice).model == SECRET
    assert [request.json["model"] for request in upstream.completion_requests] == [SECRET]


def test_a_non_member_cannot_start_a_chat_with_a_kept_model(client_bob, bob, upstream, models):
    response = client_bob.post(
        "/c/", {"content": "Hi", "client_id": str(uuid.uuid4()), "settings-model": SECRET}, htmx=True
    )
    settle()

    assert response.status_code == 422
    assert not Conversation.objects.filter(owner=bob).exists()
    assert upstream.requests == []


def test_a_message_to_a_kept_model_is_refused_and_nothing_is_stored_or_sent(client_bob, bob, upstream, models):
    chat = Conversation.objects.create(owner=bob, model=SECRET)

    response = _send(client_bob, chat)
    settle()

    assert response.status_code == 422
    assert REFUSED in response.content.decode()
    assert not chat.messages.exists(), "no message, no pending reply"
    assert upstream.requests == []


def test_leaving_the_group_takes_the_model_away_at_the_next_send(client_alice, alice, research, upstream, models):
    chat = Conversation.objects.create(owner=alice, model=SECRET)
    assert _send(client_alice, chat, "First").status_code == 200
    settle()

    alice.groups.remove(research)
    response = _send(client_alice, chat, "Second")
    settle()

    assert response.status_code == 422 and REFUSED in response.content.decode()
    assert list(chat.messages.filter(role=Message.Role.USER).values_list("content", flat=True)) == ["First"]
    assert len(upstream.completion_requests) == 1


@pytest.mark.parametrize("action", ["retry", "regenerate", "edit"])
def test_retry_regenerate_and_edit_are_refused_too(client_bob, bob, upstream, models, action):
    chat = Conversation.objects.create(owner=bob, model=SECRET)
    question = Message.objects.create(conversation=chat, role=Message.Role.USER, content="Before")
    failed = Message.objects.create(
        conversation=chat, role=Message.Role.ASSISTANT, parent=question, status=Message.Status.ERROR, error="x"
    )
    target = question if action == "edit" else failed
    before = chat.messages.count()

    response = client_bob.post(f"/c/{chat.pk}/messages/{target.pk}/{action}/", {"content": "Again"}, htmx=True)
    settle()

    assert response.status_code == 409
    assert REFUSED in response.content.decode()
    assert chat.messages.count() == before
    failed.refresh_from_db()
    assert failed.status == Message.Status.ERROR
    assert upstream.requests == []


# --- The catalogue's cache ---------------------------------------------------------------
def test_a_change_of_a_models_groups_is_seen_at_once(bob, research, models):
    _, secret = models
    assert not catalogue.may_use(bob, SECRET)  # the catalogue is cached now

    others = Group.objects.create(name="others")
    bob.groups.add(others)
    secret.groups.add(others)

    assert catalogue.may_use(bob, SECRET)


def test_deleting_a_models_last_group_does_not_open_it_to_everyone(alice, bob, research, models):
    assert catalogue.may_use(alice, SECRET)

    research.delete()

    assert not catalogue.may_use(alice, SECRET) and not catalogue.may_use(bob, SECRET)


def test_asking_costs_no_query_for_an_open_model_and_one_for_a_kept_one(bob, models, django_assert_num_queries):
    catalogue.chat_catalogue()  # cached, as every page and send finds it
    with django_assert_num_queries(0):
        assert catalogue.may_use(bob, "mistralai/mistral-tiny")
    with django_assert_num_queries(1):
        assert not catalogue.may_use(bob, SECRET)


def test_the_model_admin_edits_who_may_use_it(client_admin, research, models):
    _, secret = models
    page = client_admin.get(f"/admin/providers/chatmodel/{secret.pk}/change/").content.decode()
    listing = client_admin.get("/admin/providers/chatmodel/").content.decode()

    assert 'name="groups_only"' in page and 'name="groups"' in page
    assert "research" in listing and "everyone" in listing


# --- The API -----------------------------------------------------------------------------
def _api(token: str, method: str, path: str, body: dict | None = None):
    headers = {"Authorization": f"Bearer {token}"}
    client = CheckedClient()
    if body is None:
        return client.get(path, headers=headers)
    return client.generic(method, path, json.dumps(body), content_type="application/json", headers=headers)


def _ask(model: str) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}]}


def test_the_apis_model_list_has_a_kept_model_only_for_its_groups(alice, bob, models):
    _, alices = token_create(owner=alice, name="a")
    _, bobs = token_create(owner=bob, name="b")

    for_alice = {model["id"] for model in _api(alices, "GET", "/v1/models").json()["data"]}
    for_bob = {model["id"] for model in _api(bobs, "GET", "/v1/models").json()["data"]}

    assert SECRET in for_alice
    assert SECRET not in for_bob and "mistralai/mistral-tiny" in for_bob


def test_the_api_refuses_a_kept_model_and_sends_nothing(bob, upstream, models):
    _, bobs = token_create(owner=bob, name="b")

    response = _api(bobs, "POST", "/v1/chat/completions", {**_ask(SECRET), "store": True})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "model_not_allowed"
    assert REFUSED in response.json()["error"]["message"]
    assert upstream.requests == []
    assert not Conversation.objects.filter(owner=bob).exists(), "nothing stored"


def test_the_api_lets_a_group_member_use_a_kept_model(alice, upstream, models):
    _, alices = token_create(owner=alice, name="a")

    response = _api(alices, "POST", "/v1/chat/completions", _ask(SECRET))

    assert response.status_code == 200
    assert [request.json["model"] for request in upstream.completion_requests] == [SECRET]
