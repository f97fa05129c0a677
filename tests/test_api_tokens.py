"""Personal access tokens: shown once, hashed at rest, refused when revoked, expired or misplaced,
and good for /v1/ only; the session cookie is good for the pages only."""

import hashlib
import json
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from api.models import AccessToken
from api.tokens import token_create
from conversations.models import Conversation
from tests.conftest import CheckedClient, settle
from usage import quotas
from usage.models import Usage
from usage.services import record


@pytest.fixture
def still_minute(monkeypatch):
    """The rate limit's clock held in one minute, so that it does not turn during the test."""
    monkeypatch.setattr(quotas, "_clock", lambda: 1_800_000_000.0)


pytestmark = pytest.mark.django_db

ASK = {"model": "mistralai/mistral-tiny", "messages": [{"role": "user", "content": "hi"}]}


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _ask(client, token=None, *, headers=None, path="/v1/chat/completions", body=ASK):
    headers = {**(_bearer(token) if token else {}), **(headers or {})}
    return client.generic("POST", path, json.dumps(body), content_type="application/json", headers=headers)


def _models(client, token=None, **headers):
    return client.get("/v1/models", headers={**(_bearer(token) if token else {}), **headers})


@pytest.fixture
def api():
    return CheckedClient()  # no cookie, CSRF enforced as for a browser


@pytest.fixture
def alices_token(alice):
    return token_create(owner=alice, name="script")


def _refused(response, code="invalid_api_key"):
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["type"] == "authentication_error"


# --- Lifecycle -------------------------------------------------------------------------------


def test_a_token_is_shown_once_and_listed_by_its_prefix_afterwards(client_alice, alice):
    created = client_alice.post("/accounts/tokens/", {"name": "editor", "expires": "30"})

    token = AccessToken.objects.get(owner=alice)
    plain = created.content.decode().split("data-new-token>")[1].split("<")[0]
    assert plain.startswith("cs-") and len(plain) > 40
    assert created["Cache-Control"] == "no-store"
    later = client_alice.get("/accounts/tokens/").content.decode()
    assert plain not in later
    assert token.prefix in later and plain.startswith(token.prefix)
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)


def test_a_token_is_stored_as_its_sha256_only(alices_token):
    token, plain = alices_token

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM api_accesstoken")
        row = cursor.fetchone()

    assert hashlib.sha256(plain.encode()).hexdigest() in row
    assert not any(plain in str(value) for value in row)
    assert not any(plain[len(token.prefix) :] in str(value) for value in row)


def test_a_good_token_works_and_marks_when_it_was_used(api, alices_token, upstream):
    token, plain = alices_token

    response = _ask(api, plain)

    assert response.status_code == 200, response.content
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_a_revoked_token_is_refused(client_alice, api, alices_token, upstream):
    token, plain = alices_token

    client_alice.post(f"/accounts/tokens/{token.pk}/revoke/")

    _refused(_ask(api, plain))
    assert upstream.completion_requests == []


def test_another_persons_token_cannot_be_revoked(client_bob, alices_token):
    token, _ = alices_token

    assert client_bob.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_an_expired_token_is_refused(api, alice, upstream):
    _, plain = token_create(owner=alice, name="old", expires_at=timezone.now() - timedelta(seconds=1))

    _refused(_ask(api, plain))


def test_the_token_of_an_inactive_user_is_refused(api, alice, alices_token, upstream):
    alice.is_active = False
    alice.save()

    _refused(_ask(api, alices_token[1]))


def test_an_admin_revokes_anyones_token(client_admin, api, alices_token):
    token, plain = alices_token

    client_admin.post(
        "/admin/api/accesstoken/", {"action": "revoke", "_selected_action": [token.pk], "index": 0}, follow=True
    )

    token.refresh_from_db()
    assert token.revoked_at is not None
    _refused(_models(api, plain))
    assert plain not in client_admin.get(f"/admin/api/accesstoken/{token.pk}/change/").content.decode()


# --- Where a token is accepted, and where it is not -------------------------------------------


def test_a_token_in_the_query_string_is_refused(api, alices_token):
    plain = alices_token[1]

    _refused(api.get(f"/v1/models?api_key={plain}", headers=_bearer(plain)), code="token_in_url")
    _refused(api.get(f"/v1/models?token={plain}"), code="token_in_url")


@pytest.mark.parametrize(
    "header",
    [
        ("X-Api-Key", "{token}"),
        ("Api-Key", "{token}"),
        ("Authorization", "{token}"),
        ("Authorization", "Token {token}"),
        ("Authorization", "Basic {token}"),
        ("Authorization", "Bearer"),
        ("Proxy-Authorization", "Bearer {token}"),
    ],
)
def test_a_token_in_any_other_header_is_refused(api, alices_token, upstream, header):
    name, value = header

    response = _ask(api, headers={name: value.format(token=alices_token[1])})

    assert response.status_code == 401 and response.json()["error"]["code"] == "missing_token"
    assert upstream.completion_requests == []


def test_the_session_cookie_does_not_authenticate_v1(client_alice, upstream):
    for response in (_models(client_alice), _ask(client_alice)):
        assert response.status_code == 401, "a signed-in browser must not reach /v1/ (no redirect either)"
        assert response.json()["error"]["code"] == "missing_token"
    assert upstream.completion_requests == []


def test_a_token_does_not_open_the_sites_pages(api, alices_token):
    for url in ("/", "/accounts/tokens/", "/accounts/password_change/", "/admin/"):
        response = api.get(url, headers=_bearer(alices_token[1]))
        assert response.status_code == 302, url
        assert "/login/" in response["Location"]


def test_csrf_does_not_apply_to_v1_and_no_cookie_is_set(api, alices_token, upstream):
    response = _ask(api, alices_token[1])

    assert response.status_code == 200
    assert not response.cookies


def test_cors_is_off_unless_configured(api, alices_token, settings):
    plain = alices_token[1]
    assert "Access-Control-Allow-Origin" not in _models(api, plain, Origin="https://tool.example")
    preflight = api.options("/v1/chat/completions", headers={"Origin": "https://tool.example"})
    assert "Access-Control-Allow-Origin" not in preflight

    settings.API_CORS_ORIGINS = ["https://tool.example"]

    assert _models(api, plain, Origin="https://tool.example")["Access-Control-Allow-Origin"] == "https://tool.example"
    assert "Access-Control-Allow-Origin" not in _models(api, plain, Origin="https://evil.example")
    preflight = api.options("/v1/chat/completions", headers={"Origin": "https://tool.example"})
    assert "Authorization" in preflight["Access-Control-Allow-Headers"]


def test_the_api_can_be_turned_off(api, alices_token, settings, upstream):
    settings.API_ENABLED = False

    response = _ask(api, alices_token[1])

    assert response.status_code == 403 and response.json()["error"]["code"] == "api_disabled"
    assert upstream.completion_requests == []


def test_other_methods_and_addresses_answer_in_the_openai_shape(api, alices_token):
    assert api.delete("/v1/models", headers=_bearer(alices_token[1])).json()["error"]["code"] == "method_not_allowed"
    missing = api.get("/v1/embeddings", headers=_bearer(alices_token[1]))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_url"


# --- One budget with the chat page ---------------------------------------------------------


def test_tokens_spent_on_the_page_count_against_the_api_and_back(
    client_alice, api, alice, alices_token, upstream, settings
):
    settings.CHAT_DAILY_TOKEN_QUOTA = 30
    record(user_id=alice.pk, key=None, model="mistralai/mistral-tiny", status="complete", total_tokens=29)
    assert _ask(api, alices_token[1]).status_code == 200  # under the quota: the API spends the rest

    response = _ask(api, alices_token[1])
    page = client_alice.post("/c/", {"content": "hello", "client_id": str(uuid.uuid4())}, htmx=True)

    assert response.status_code == 429 and response.json()["error"]["code"] == "quota_exceeded"
    assert int(response["Retry-After"]) > 0
    assert "used your 30 tokens for today" in response.json()["error"]["message"]
    assert "used your 30 tokens for today" in page.content.decode()
    assert len(upstream.completion_requests) == 1


@pytest.mark.django_db(transaction=True)  # the page's reply is generated once its turn is committed
def test_the_rate_limit_counts_the_page_and_the_api_together(
    client_alice, api, alices_token, upstream, settings, still_minute
):
    settings.CHAT_RATE_LIMIT_PER_MINUTE = 2
    client_alice.post("/c/", {"content": "from the page", "client_id": str(uuid.uuid4())}, htmx=True)
    settle()
    assert _ask(api, alices_token[1]).status_code == 200

    response = _ask(api, alices_token[1])

    assert response.status_code == 429 and response.json()["error"]["code"] == "rate_limit_exceeded"
    assert len(upstream.completion_requests) == 2


# --- Optional history ----------------------------------------------------------------------


def test_a_token_that_saves_history_stores_each_exchange(api, alice, upstream):
    _, plain = token_create(owner=alice, name="notebook", store_history=True)

    _ask(api, plain)

    assert Conversation.objects.get(owner=alice).messages.count() == 2


def test_a_failed_stored_exchange_keeps_the_question_and_a_labelled_error(api, alice, alices_token, upstream):
    for _ in range(3):
        upstream.fail(500)

    response = _ask(api, alices_token[1], body={**ASK, "store": True})

    assert response.status_code == 503
    question, reply = Conversation.objects.get(owner=alice).messages.order_by("id")
    assert (question.content, reply.status, reply.error_code) == ("hi", "error", "server_error")
    assert reply.error == response.json()["error"]["message"]
    assert "having trouble" in reply.error


# --- The admin's Usage page ----------------------------------------------------------------


def test_the_usage_page_and_csv_tell_api_calls_from_the_chat_page(client_admin, api, alice, alices_token, upstream):
    Usage.objects.create(user=alice, model="from-the-page", status="complete", total_tokens=7)
    _ask(api, alices_token[1])

    export = client_admin.get("/admin/usage/usage/export.csv?source=api")
    only_api = b"".join(export.streaming_content).decode().splitlines()
    page = client_admin.get("/admin/usage/usage/?source=api").content.decode()

    assert ",source," in only_api[0]
    assert len(only_api) == 2 and ",api," in only_api[1] and "mistralai/mistral-tiny" in only_api[1]
    assert '<option value="api" selected>API</option>' in page
