"""Off-boarding: however a person is deactivated (the admin's action, the change form, a plain
save as single sign-on does it), their sessions end at once, their live replies stop and are kept,
their share links stop working and their API tokens are refused."""

import time
import uuid

import pytest
from django.contrib.auth import get_backends, get_user_model
from django.contrib.sessions.models import Session

from accounts import offboarding
from api.tokens import token_create
from common.signals import access_ended
from conversations import services
from conversations.models import Conversation, Message
from tests.conftest import CheckedClient, settle

pytestmark = pytest.mark.django_db(transaction=True)

User = get_user_model()
FULL = " ".join(f"word{number}" for number in range(30))

# With REDIS_URL the sessions are cached_db; without it, db. Both are checked either way.
ENGINES = ["django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cached_db"]


@pytest.fixture(params=ENGINES, ids=["db", "cached_db"])
def engine(request, settings):
    settings.SESSION_ENGINE = request.param
    return request.param


def _signed_in(user) -> CheckedClient:
    client = CheckedClient()
    client.force_login(user)
    return client


def _is_refused(client) -> bool:
    response = client.get("/")
    return response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def _sessions_of(user) -> list[str]:
    return [row.session_key for row in Session.objects.all() if row.get_decoded().get("_auth_user_id") == str(user.pk)]


def _wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def _change_form(user, **changes) -> dict:
    data = {
        "username": user.username,
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "chat_quota-TOTAL_FORMS": "1",
        "chat_quota-INITIAL_FORMS": "0",
        "chat_quota-MIN_NUM_FORMS": "0",
        "chat_quota-MAX_NUM_FORMS": "1",
        "chat_quota-0-user": str(user.pk),
    }
    return {**data, **changes}


# --- Sessions ----------------------------------------------------------------------------
def test_the_admins_action_ends_every_session_of_the_person_at_once(engine, client_admin, alice, bob):
    on_laptop, on_phone, bobs = _signed_in(alice), _signed_in(alice), _signed_in(bob)
    assert not _is_refused(on_laptop) and len(_sessions_of(alice)) == 2

    response = client_admin.post(
        "/admin/auth/user/", {"action": "deactivate_users", "_selected_action": [alice.pk], "index": 0}, follow=True
    )

    assert "Deactivated 1 person: their sessions ended" in response.content.decode()
    alice.refresh_from_db()
    assert not alice.is_active
    assert _sessions_of(alice) == [], "the session rows are gone (and their cached copies with them)"
    assert _is_refused(on_laptop) and _is_refused(on_phone)
    assert not _is_refused(bobs), "nobody else is signed out"
    assert not _is_refused(client_admin)


def test_the_cached_copy_of_a_session_goes_too(settings, alice):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    from django.contrib.sessions.backends.cached_db import SessionStore

    client = _signed_in(alice)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    store = SessionStore(session_key=key)
    assert store.load().get("_auth_user_id") == str(alice.pk)  # now in the cache too

    offboarding.user_deactivate(user=alice)

    assert not store.exists(key)
    assert SessionStore(session_key=key).load() == {}, "neither the cache nor the database has it"


def test_unticking_active_in_the_change_form_does_the_same(engine, client_admin, alice):
    client = _signed_in(alice)

    response = client_admin.post(f"/admin/auth/user/{alice.pk}/change/", _change_form(alice))

    assert response.status_code == 302, response.content.decode()[:2000]
    alice.refresh_from_db()
    assert not alice.is_active
    assert _sessions_of(alice) == [] and _is_refused(client)


def test_a_plain_save_of_is_active_ends_the_sessions_too(engine, alice):
    # What single sign-on does when the identity provider refuses a known person.
    client = _signed_in(alice)
    user = User.objects.get(pk=alice.pk)

    user.is_active = False
    user.save(update_fields=["is_active"])

    assert _sessions_of(alice) == [] and _is_refused(client)


def test_a_bare_update_sends_no_signal_but_still_lets_nobody_in(engine, alice):
    client = _signed_in(alice)

    User.objects.filter(pk=alice.pk).update(is_active=False)

    assert _sessions_of(alice), "no signal: the rows stay"
    assert _is_refused(client), "the backend reads is_active on every request: no cached user lets them through"


def test_every_configured_backend_refuses_an_inactive_user(alice):
    User.objects.filter(pk=alice.pk).update(is_active=False)

    assert [backend.get_user(alice.pk) for backend in get_backends()] == [None] * len(get_backends())


def test_saving_an_inactive_person_again_ends_nothing_again(alice):
    heard = []

    def receiver(sender, user, **kwargs):
        heard.append(user.pk)

    access_ended.connect(receiver)
    try:
        offboarding.user_deactivate(user=alice)
        user = User.objects.get(pk=alice.pk)
        user.first_name = "Alice"
        user.save()
        assert offboarding.user_deactivate(user=user) is False
    finally:
        access_ended.disconnect(receiver)

    assert heard == [alice.pk]


def test_the_admin_cannot_deactivate_themselves_by_the_action(client_admin, admin_user):
    action = {"action": "deactivate_users", "_selected_action": [admin_user.pk], "index": 0}
    response = client_admin.post("/admin/auth/user/", action, follow=True)

    assert "You cannot deactivate yourself here" in response.content.decode()
    admin_user.refresh_from_db()
    assert admin_user.is_active and not _is_refused(client_admin)


def test_a_reactivated_person_signs_in_again(client_admin, alice):
    client = _signed_in(alice)
    offboarding.user_deactivate(user=alice)
    alice.refresh_from_db()
    alice.is_active = True
    alice.save()

    assert _is_refused(client), "the old session stays ended"
    assert not _is_refused(_signed_in(alice))


# --- Live replies ------------------------------------------------------------------------
def test_a_live_reply_is_stopped_and_its_text_so_far_kept(client_alice, alice, upstream):
    chat = Conversation.objects.create(owner=alice, model="mistralai/mistral-tiny")
    upstream.stream(FULL, delay=0.2)  # 6 s if nothing stops it
    client_alice.post(f"/c/{chat.pk}/messages/", {"content": "Count", "client_id": str(uuid.uuid4())}, htmx=True)
    reply = chat.messages.get(role=Message.Role.ASSISTANT)
    _wait_for(lambda: Message.objects.get(pk=reply.pk).content)
    started = time.monotonic()

    offboarding.user_deactivate(user=alice)
    settle()

    assert time.monotonic() - started < 2.0, "the upstream call was closed, not read to its end"
    reply.refresh_from_db()
    assert reply.status == Message.Status.STOPPED
    assert reply.content and FULL.startswith(reply.content) and reply.content != FULL
    assert upstream.disconnects, "the upstream saw chatsite go away"


def test_another_persons_live_reply_goes_on(client_bob, alice, bob, upstream):
    chat = Conversation.objects.create(owner=bob, model="mistralai/mistral-tiny")
    upstream.stream(FULL, delay=0.01)
    client_bob.post(f"/c/{chat.pk}/messages/", {"content": "Count", "client_id": str(uuid.uuid4())}, htmx=True)

    offboarding.user_deactivate(user=alice)
    settle()

    assert chat.messages.get(role=Message.Role.ASSISTANT).status == Message.Status.COMPLETE


# --- Share links and API tokens ----------------------------------------------------------
def test_the_persons_share_links_stop_working(alice, anon_client):
    chat = Conversation.objects.create(owner=alice, model="mistralai/mistral-tiny", title="Shared plans")
    link = services.share_create(conversation=chat)
    assert anon_client.get(f"/s/{link.token}/").status_code == 200

    offboarding.user_deactivate(user=alice)
    response = anon_client.get(f"/s/{link.token}/")

    assert response.status_code == 404
    assert "no longer available" in response.content.decode()
    assert "Shared plans" not in response.content.decode()


def test_the_persons_api_tokens_are_refused(alice, upstream):
    _, token = token_create(owner=alice, name="script")
    api = CheckedClient()
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get("/v1/models", headers=headers).status_code == 200

    offboarding.user_deactivate(user=alice)
    response = api.get("/v1/models", headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert upstream.requests == []
