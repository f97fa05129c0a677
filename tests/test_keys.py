"""Upstream keys: encrypted at rest, rotated, resolved per person, tested from the admin, never shown."""

import logging
import uuid

import pytest
from cryptography.fernet import Fernet
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection

from chatsite import env
from common.log import RedactSecretsFilter
from conversations.models import Conversation
from providers import keys
from providers.models import ProviderKey
from tests.conftest import API_KEY, settle

pytestmark = pytest.mark.django_db(transaction=True)

ALICE_SECRET = "sk-alice-own-secret-0000000000aaaa"
GROUP_SECRET = "sk-group-secret-1111111111111bbbb"
DEFAULT_SECRET = "sk-site-default-secret-22222cccc"


def _key(label, secret, *, base_url="https://api.aimlapi.com/v1", **fields) -> ProviderKey:
    key = ProviderKey(label=label, base_url=base_url, **fields)
    keys.set_secret(key, secret)
    key.save()
    return key


def _raw_rows() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM conversations_providerkey")
        return cursor.fetchall()


def _start_chat(client):
    return client.post("/c/", {"content": "Hello", "client_id": str(uuid.uuid4())}, htmx=True)


# --- Encryption -------------------------------------------------------------------------
def test_a_stored_key_decrypts_to_what_was_stored():
    key = _key("Team", ALICE_SECRET)

    assert keys.secret_of(ProviderKey.objects.get(pk=key.pk)) == ALICE_SECRET
    assert key.masked == "••••aaaa"


def test_the_database_never_holds_the_plain_key():
    _key("Team", ALICE_SECRET)

    rows = _raw_rows()

    assert len(rows) == 1
    assert not any(ALICE_SECRET in str(value) for value in rows[0])
    # What is stored is a Fernet token, not an encoding of the key.
    token = ProviderKey.objects.values_list("secret_encrypted", flat=True).get()
    assert token.startswith("gAAAAA")


def test_rotation_re_encrypts_every_row_and_the_old_key_can_then_be_removed(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = [old]
    stored = {_key(f"Key {n}", f"sk-rotation-secret-{n}-xyz123").pk: f"sk-rotation-secret-{n}-xyz123" for n in range(3)}
    before = dict(ProviderKey.objects.values_list("pk", "secret_encrypted"))

    settings.FIELD_ENCRYPTION_KEY = [new, old]
    call_command("rotate_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115

    after = dict(ProviderKey.objects.values_list("pk", "secret_encrypted"))
    assert all(after[pk] != before[pk] for pk in stored)
    settings.FIELD_ENCRYPTION_KEY = [new]  # the old key is gone
    for pk, secret in stored.items():
        assert keys.secret_of(ProviderKey.objects.get(pk=pk)) == secret
    settings.FIELD_ENCRYPTION_KEY = [old]  # and it no longer opens any row
    with pytest.raises(keys.EncryptionError):
        keys.secret_of(ProviderKey.objects.get(pk=next(iter(stored))))


def test_rotation_stops_with_a_clear_error_when_a_row_cannot_be_decrypted(settings):
    settings.FIELD_ENCRYPTION_KEY = [Fernet.generate_key().decode()]
    _key("Orphan", "sk-orphan-secret-000000dddd")
    settings.FIELD_ENCRYPTION_KEY = [Fernet.generate_key().decode()]

    with pytest.raises(CommandError, match="cannot be decrypted"):
        call_command("rotate_keys")


def test_a_malformed_encryption_key_stops_the_start(monkeypatch):
    monkeypatch.setenv("FIELD_ENCRYPTION_KEY", "not-a-fernet-key")

    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEY"):
        env.env_fernet_keys("FIELD_ENCRYPTION_KEY")


def test_without_an_encryption_key_the_admin_refuses_to_store_a_key_and_says_why(client_admin, settings):
    settings.FIELD_ENCRYPTION_KEY = []

    response = client_admin.post(
        "/admin/providers/providerkey/add/",
        {"label": "Team", "base_url": "https://api.aimlapi.com/v1", "secret": ALICE_SECRET, "enabled": "on"},
    )

    assert response.status_code == 200
    assert "FIELD_ENCRYPTION_KEY is not set" in response.content.decode()
    assert not ProviderKey.objects.exists()


def test_without_an_encryption_key_the_environment_key_still_works(client_alice, alice, upstream, settings):
    settings.FIELD_ENCRYPTION_KEY = []

    _start_chat(client_alice)
    settle()

    assert Conversation.objects.get(owner=alice).messages.get(role="assistant").status == "complete"
    assert upstream.completion_requests[0].headers["Authorization"] == f"Bearer {API_KEY}"


# --- Which key a request uses -----------------------------------------------------------
@pytest.fixture
def team(alice):
    group = Group.objects.create(name="team")
    alice.groups.add(group)
    return group


def test_resolution_order_is_own_then_group_then_site_default_then_environment(alice, team, settings):
    assert keys.resolve_key(alice).api_key == API_KEY
    assert keys.resolve_key(alice).provider_key is None

    default = _key("Default", DEFAULT_SECRET, is_default=True)
    assert keys.resolve_key(alice).provider_key == default

    group_key = _key("Group", GROUP_SECRET)
    group_key.groups.add(team)
    assert keys.resolve_key(alice).provider_key == group_key

    own = _key("Alice", ALICE_SECRET)
    own.users.add(alice)
    resolved = keys.resolve_key(alice)
    assert (resolved.provider_key, resolved.api_key, resolved.base_url) == (own, ALICE_SECRET, own.base_url)


def test_a_disabled_key_is_never_used(alice, bob, team):
    own = _key("Alice", ALICE_SECRET, enabled=False)
    own.users.add(alice)
    group_key = _key("Group", GROUP_SECRET, enabled=False)
    group_key.groups.add(team)
    _key("Default", DEFAULT_SECRET, is_default=True, enabled=False)

    assert keys.resolve_key(alice).provider_key is None
    assert keys.resolve_key(alice).api_key == API_KEY
    assert keys.resolve_key(bob).api_key == API_KEY


def test_a_key_given_to_my_group_is_the_one_my_chat_sends(client_alice, alice, bob, team, upstream):
    group_key = _key("Group", GROUP_SECRET, base_url=upstream.base_url)
    group_key.groups.add(team)
    _key("Default", DEFAULT_SECRET, base_url=upstream.base_url, is_default=True)

    _start_chat(client_alice)
    settle()

    assert upstream.completion_requests[-1].headers["Authorization"] == f"Bearer {GROUP_SECRET}"
    assert Conversation.objects.get(owner=alice).messages.get(role="assistant").status == "complete"


def test_people_outside_the_group_get_the_site_default(client_bob, team, upstream):
    _key("Group", GROUP_SECRET, base_url=upstream.base_url).groups.add(team)
    _key("Default", DEFAULT_SECRET, base_url=upstream.base_url, is_default=True)

    _start_chat(client_bob)
    settle()

    assert upstream.completion_requests[-1].headers["Authorization"] == f"Bearer {DEFAULT_SECRET}"


def test_a_refused_stored_key_tells_the_person_an_admin_must_check_that_key(client_alice, alice, upstream):
    _key("Team key", ALICE_SECRET, base_url=upstream.base_url).users.add(alice)
    upstream.fail(401, {"error": {"message": f"Invalid key {ALICE_SECRET}"}})

    _start_chat(client_alice)
    settle()

    reply = Conversation.objects.get(owner=alice).messages.get(role="assistant")
    assert reply.status == "error"
    assert "The upstream “Team key” refused the API key. Please ask an admin" in reply.error
    assert ALICE_SECRET not in reply.error
    assert "Team key" in client_alice.get(f"/c/{reply.conversation_id}/").content.decode()


# --- The admin: add, test, never show again --------------------------------------------
def _add_key_in_admin(client, upstream, *, secret=ALICE_SECRET, **extra):
    data = {"label": "Team", "base_url": upstream.base_url, "secret": secret, "enabled": "on", **extra}
    response = client.post("/admin/providers/providerkey/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return ProviderKey.objects.get(label="Team")


def test_the_secret_is_never_shown_again_in_the_admin_or_its_history(client_admin, upstream, alice, team):
    key = _add_key_in_admin(client_admin, upstream, groups=[team.pk])
    # And an edit that leaves the field blank keeps the key.
    response = client_admin.post(
        f"/admin/providers/providerkey/{key.pk}/change/",
        {"label": "Team", "base_url": upstream.base_url, "secret": "", "enabled": "on", "groups": [team.pk]},
    )
    assert response.status_code == 302
    assert keys.secret_of(ProviderKey.objects.get(pk=key.pk)) == ALICE_SECRET

    pages = {
        "change list": client_admin.get("/admin/providers/providerkey/"),
        "change page": client_admin.get(f"/admin/providers/providerkey/{key.pk}/change/"),
        "history": client_admin.get(f"/admin/providers/providerkey/{key.pk}/history/"),
        "admin home": client_admin.get("/admin/"),
        "user page": client_admin.get(f"/admin/auth/user/{alice.pk}/change/"),
    }
    for name, response in pages.items():
        html = response.content.decode()
        assert response.status_code == 200, name
        assert ALICE_SECRET not in html, name
        assert ALICE_SECRET[:-4] not in html, name
    assert "••••aaaa" in pages["change list"].content.decode()
    assert "••••aaaa" in pages["change page"].content.decode()
    assert "Team (••••aaaa)" in pages["user page"].content.decode()
    entries = list(LogEntry.objects.values_list("object_repr", "change_message"))
    assert len(entries) == 2
    assert not any(ALICE_SECRET in f"{entry}" for entry in entries)


def test_the_secret_is_never_on_a_chat_page_or_in_a_log_record(client_admin, client_alice, alice, upstream, caplog):
    caplog.set_level(logging.DEBUG)
    key = _add_key_in_admin(client_admin, upstream)
    key.users.add(alice)
    upstream.reply("Hello")
    _start_chat(client_alice)
    settle()
    upstream.fail(401, {"error": {"message": f"Incorrect API key provided: {ALICE_SECRET}"}})
    conversation = Conversation.objects.get(owner=alice)
    reply = conversation.messages.get(role="assistant")
    client_alice.post(f"/c/{conversation.pk}/messages/{reply.pk}/regenerate/", htmx=True)
    settle()

    pages = [client_alice.get("/"), client_alice.get(f"/c/{conversation.pk}/")]

    assert upstream.completion_requests[0].headers["Authorization"] == f"Bearer {ALICE_SECRET}"
    assert all(ALICE_SECRET not in page.content.decode() for page in pages)
    assert "upstream call to" in caplog.text  # the 401 was logged, without the key
    assert ALICE_SECRET not in caplog.text


def test_the_log_filter_scrubs_every_stored_key_it_has_seen():
    _key("Team", ALICE_SECRET)
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "sent %s and %s", (ALICE_SECRET, API_KEY), None)

    RedactSecretsFilter().filter(record)

    assert record.getMessage() == "sent [redacted] and [redacted]"


def test_a_resolved_key_never_shows_its_secret_in_a_repr(alice):
    _key("Team", ALICE_SECRET).users.add(alice)

    resolved = keys.resolve_key(alice)

    assert ALICE_SECRET not in repr(resolved)
    assert ALICE_SECRET not in repr(resolved.config())


def test_test_key_reports_ok_when_the_upstream_accepts_it(client_admin, upstream):
    key = _add_key_in_admin(client_admin, upstream)

    response = client_admin.post(
        "/admin/providers/providerkey/", {"action": "test_keys", "_selected_action": [key.pk]}, follow=True
    )

    html = response.content.decode()
    assert "“Team” works" in html
    assert "answered with 1 model" in html
    request = upstream.requests[-1]
    assert (request.method, request.path) == ("GET", "/v1/models")
    assert request.headers["Authorization"] == f"Bearer {ALICE_SECRET}"


def test_test_key_reports_the_readable_error_when_the_upstream_refuses_it(client_admin, upstream):
    key = _add_key_in_admin(client_admin, upstream)
    upstream.fail(401, {"error": {"message": "Invalid API key", "type": "auth"}})

    response = client_admin.post(
        "/admin/providers/providerkey/", {"action": "test_keys", "_selected_action": [key.pk]}, follow=True
    )

    html = response.content.decode()
    assert "“Team” failed" in html
    assert "refused the API key" in html
    assert "HTTP 401: Invalid API key" in html
    assert "works" not in html


# --- Base URL and audit -----------------------------------------------------------------
@pytest.mark.parametrize("base_url", ["ftp://files.example.com/v1", "gopher://127.0.0.1:6379/", "file://localhost/etc"])
def test_a_key_must_point_at_an_http_address(client_admin, base_url):
    response = client_admin.post(
        "/admin/providers/providerkey/add/",
        {"label": "Team", "base_url": base_url, "secret": ALICE_SECRET, "enabled": "on"},
    )

    assert response.status_code == 200
    assert "Enter an http:// or https:// address." in response.content.decode()
    assert not ProviderKey.objects.exists()


def test_only_people_allowed_to_change_keys_can_see_or_add_them(client_alice, alice, django_user_model):
    alice.is_staff = True
    alice.save()

    assert client_alice.get("/admin/providers/providerkey/").status_code == 403
    assert client_alice.get("/admin/providers/providerkey/add/").status_code == 403


def test_every_key_change_is_audited_without_the_key(client_admin, admin_user, upstream, caplog):
    caplog.set_level(logging.INFO, logger="chatsite.audit")
    key = _add_key_in_admin(client_admin, upstream)
    client_admin.post(
        f"/admin/providers/providerkey/{key.pk}/change/",
        {"label": "Team", "base_url": upstream.base_url, "secret": GROUP_SECRET, "enabled": "on"},
    )
    client_admin.post("/admin/providers/providerkey/", {"action": "disable_keys", "_selected_action": [key.pk]})
    client_admin.post(f"/admin/providers/providerkey/{key.pk}/delete/", {"post": "yes"})

    audit = [record.getMessage() for record in caplog.records if record.name == "chatsite.audit"]
    assert audit == [
        f"{admin_user} added the upstream API key 'Team' (#{key.pk})",
        f"{admin_user} changed the upstream API key 'Team' (#{key.pk}): ['API key']",
        f"{admin_user} changed the upstream API key 'Team' (#{key.pk}): ['Enabled']",
        f"{admin_user} deleted the upstream API key 'Team' (#{key.pk})",
    ]
    history = [entry.get_change_message() for entry in LogEntry.objects.order_by("pk")]
    assert history[1:3] == ["Changed API key.", "Changed Enabled."]
    assert len(history) == 4
    for text in [*audit, *history, caplog.text]:
        assert ALICE_SECRET not in text and GROUP_SECRET not in text
