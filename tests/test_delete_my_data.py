""" "Delete all my data": a confirmation step, then everything of one person goes and nobody else's."""

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from api.models import AccessToken
from api.tokens import token_create
from conversations.models import Conversation, Message, ShareLink
from retention.models import GroupRetention
from tests.conftest import CheckedClient
from usage.models import Usage

pytestmark = pytest.mark.django_db

User = get_user_model()
DELETE = "/accounts/data/delete/"


def _data_of(owner) -> dict:
    """A conversation with a finished turn, its usage row, a share link, a token and a staged import."""
    conversation = Conversation.objects.create(owner=owner, model="m", title=f"{owner.username}'s plans")
    question = Message.objects.create(conversation=conversation, role="user", content="the secret")
    reply = Message.objects.create(conversation=conversation, role="assistant", content="an answer", parent=question)
    Conversation.objects.filter(pk=conversation.pk).update(current_message=reply)
    Usage.objects.create(user=owner, model="m", message=reply, status="complete", total_tokens=11)
    link = ShareLink.objects.create(conversation=conversation, token=uuid.uuid4().hex)
    Conversation.objects.create(owner=owner, model="m", import_batch=uuid.uuid4(), deleted_at=conversation.created_at)
    _, token = token_create(owner=owner, name="script")
    return {"conversation": conversation, "link": link, "token": token}


def _rows_of(user) -> list:
    return [
        list(Conversation.objects.filter(owner=user).order_by("pk").values()),
        list(Message.objects.filter(conversation__owner=user).order_by("pk").values()),
        list(ShareLink.objects.filter(conversation__owner=user).order_by("pk").values()),
        list(AccessToken.objects.filter(owner=user).order_by("pk").values()),
        list(Usage.objects.filter(user=user).order_by("pk").values()),
        list(User.objects.filter(pk=user.pk).values()),
    ]


def _api_models(token: str) -> int:
    return Client().get("/v1/models", headers={"Authorization": f"Bearer {token}"}).status_code


@pytest.fixture
def both(alice, bob):
    return {"alice": _data_of(alice), "bob": _data_of(bob)}


def test_the_page_shows_what_is_kept_the_export_links_and_the_form(client_alice, both, settings):
    settings.RETENTION_CONVERSATION_DAYS = 90

    page = client_alice.get("/accounts/data/").content.decode()

    assert "2 conversations (archived and deleted ones too) with 2 messages" in page
    assert "1 active share link and 1 API token" in page
    assert "not written in for 90 days is deleted automatically" in page
    assert 'href="/history/export.json"' in page and 'href="/history/export.md"' in page
    assert "Type your username to confirm" in page
    assert "bob" not in page


def test_everything_of_the_person_goes_and_the_usage_rows_stay_without_a_name(client_alice, alice, bob, both):
    bobs_before = _rows_of(bob)
    assert _api_models(both["alice"]["token"]) == 200

    response = client_alice.post(DELETE, {"confirm": "alice"})

    assert response.status_code == 302 and response["Location"] == "/accounts/deleted/"
    assert not User.objects.filter(username="alice").exists()
    assert not Conversation.objects.filter(owner_id=alice.pk).exists()
    assert not Message.objects.filter(conversation__owner_id=alice.pk).exists()
    assert not ShareLink.objects.filter(conversation__owner_id=alice.pk).exists()
    assert not AccessToken.objects.filter(owner_id=alice.pk).exists()
    orphaned = Usage.objects.filter(user__isnull=True)
    assert [(row.total_tokens, row.message_id) for row in orphaned] == [(11, None)]
    assert _rows_of(bob) == bobs_before
    assert _api_models(both["alice"]["token"]) == 401
    assert client_alice.get(f"/s/{both['alice']['link'].token}/").status_code == 404
    assert client_alice.get(f"/s/{both['bob']['link'].token}/").status_code == 200


def test_afterwards_the_person_is_signed_out_and_sees_what_was_deleted(client_alice, both):
    confirmation = client_alice.post(DELETE, {"confirm": "alice"}, follow=True)

    text = confirmation.content.decode()
    assert "Your data was deleted" in text
    assert "2 conversations, 2 messages, 1 share link and 1 API token" in text
    assert "1 usage record (model, tokens and time, nothing you wrote) stay" in text
    assert client_alice.get("/")["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("typed", ["", "Alice", "bob", " alice x", "root"])
def test_a_wrong_confirmation_changes_nothing(client_alice, alice, both, typed):
    before = _rows_of(alice)

    response = client_alice.post(DELETE, {"confirm": typed}, htmx=True)

    assert response.status_code == 422
    assert b"nothing was deleted" in response.content or b"This field is required" in response.content
    assert b'id="delete-my-data"' in response.content and b"<html" not in response.content
    assert _rows_of(alice) == before
    assert client_alice.get("/").status_code == 200  # still signed in


def test_with_htmx_the_browser_is_sent_to_the_confirmation(client_alice, both):
    response = client_alice.post(DELETE, {"confirm": "alice"}, htmx=True)

    assert response.status_code == 200 and response["HX-Redirect"] == "/accounts/deleted/"
    assert not User.objects.filter(username="alice").exists()


def test_a_superuser_is_refused_with_the_reason(client_admin, admin_user, both):
    before = _rows_of(admin_user)

    page = client_admin.get("/accounts/data/").content.decode()
    response = client_admin.post(DELETE, {"confirm": admin_user.username})

    assert "cannot delete itself here" in page and 'id="delete-my-data"' not in page
    assert response.status_code == 422 and b"Ask another administrator" in response.content
    assert _rows_of(admin_user) == before


def test_it_waits_for_a_reply_being_written(client_alice, alice, both):
    Message.objects.create(conversation=both["alice"]["conversation"], role="assistant", status="streaming")
    before = _rows_of(alice)

    response = client_alice.post(DELETE, {"confirm": "alice"})

    assert response.status_code == 422 and b"still being written" in response.content
    assert _rows_of(alice) == before


def test_a_get_cannot_delete(client_alice, alice, both):
    response = client_alice.get(DELETE, {"confirm": "alice"})

    assert response.status_code == 405
    assert User.objects.filter(pk=alice.pk).exists()


def test_a_post_without_the_csrf_token_is_refused(alice, both):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    response = client.post(DELETE, {"confirm": "alice"})

    assert response.status_code == 403
    assert User.objects.filter(pk=alice.pk).exists()


@pytest.mark.parametrize(("method", "url"), [("get", "/accounts/data/"), ("post", DELETE)])
def test_anonymous_people_are_sent_to_sign_in(anon_client, both, method, url):
    response = getattr(anon_client, method)(url, {"confirm": "alice"})

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert User.objects.filter(username="alice").exists()


def test_the_confirmation_page_without_a_deletion_says_nothing_about_anyone(both):
    page = CheckedClient().get("/accounts/deleted/")

    assert page.status_code == 200 and b"Nothing to show" in page.content


def test_the_page_gives_the_longest_period_of_the_persons_groups(client_alice, alice, settings):
    settings.RETENTION_CONVERSATION_DAYS = 30
    short, long = Group.objects.create(name="short"), Group.objects.create(name="long")
    GroupRetention.objects.create(group=short, conversation_days=10)
    GroupRetention.objects.create(group=long, conversation_days=365)
    alice.groups.add(short, long)

    assert "for 365 days is deleted automatically" in client_alice.get("/accounts/data/").content.decode()

    GroupRetention.objects.filter(group=short).update(conversation_days=0)
    assert "kept until you delete them" in client_alice.get("/accounts/data/").content.decode()


def test_another_persons_name_deletes_neither_of_them(client_bob, alice, bob, both):
    before = [_rows_of(alice), _rows_of(bob)]

    response = client_bob.post(DELETE, {"confirm": "alice"})
    page = client_bob.get("/accounts/data/").content.decode()

    assert response.status_code == 422 and b"nothing was deleted" in response.content
    assert [_rows_of(alice), _rows_of(bob)] == before
    assert "alice" not in page and "2 conversations (archived and deleted ones too) with 2 messages" in page
