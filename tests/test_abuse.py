"""Abuse of the site by a signed-in person or a stranger: redirects to other sites, sign-in
bursts, stream floods and bodies that are not text."""

import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests

from conversations.models import Conversation
from tests.conftest import PASSWORD, clear_cache

pytestmark = pytest.mark.django_db


# --- Redirects stay on this site ---------------------------------------------------------


@pytest.fixture
def conversation(alice):
    return Conversation.objects.create(owner=alice, title="Mine")


@pytest.mark.parametrize("action", ["pin", "archive"])
@pytest.mark.parametrize(
    "elsewhere",
    ["https://elsewhere.example/", "//elsewhere.example/", "/\\elsewhere.example/", "http:elsewhere.example"],
)
def test_it_does_not_redirect_to_another_site(client_alice, conversation, action, elsewhere):
    response = client_alice.post(f"/c/{conversation.pk}/{action}/", {f"{action}ed": "1", "next": elsewhere})

    assert response.status_code == 302
    assert response["Location"] == conversation.get_absolute_url()


def test_it_follows_a_next_on_this_site(client_alice, conversation):
    response = client_alice.post(f"/c/{conversation.pk}/pin/", {"pinned": "1", "next": "/?archived=1"})

    assert response.status_code == 302
    assert response["Location"] == "/?archived=1"
    conversation.refresh_from_db()
    assert conversation.pinned_at is not None


# --- A burst of sign-in guesses ----------------------------------------------------------

LIMIT = 3


@pytest.fixture(params=["locmem", "redis"])
def shared_cache(request, settings):
    """The cache the throttle counts in: this process's memory, or Redis as with REDIS_URL."""
    if request.param == "redis":
        url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
        try:
            redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        except redis.RedisError as error:
            pytest.skip(f"Redis is not reachable at {url}: {error}")
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": url,
                "KEY_PREFIX": f"chatsite-test-abuse-{uuid.uuid4().hex}",
            }
        }
    yield request.param
    clear_cache()


def _signed_out_session(base_url: str) -> tuple[requests.Session, str]:
    session = requests.Session()
    session.get(f"{base_url}/accounts/login/", timeout=10).raise_for_status()
    return session, session.cookies["csrftoken"]


def _at_once(base_url: str, passwords: list[str]) -> list[requests.Response]:
    """Each password from its own connection, all released together (as a script would)."""
    sessions = [_signed_out_session(base_url) for _ in passwords]
    start = threading.Barrier(len(passwords))

    def guess(session_and_token, password):
        session, token = session_and_token
        form = {"username": "alice", "password": password, "csrfmiddlewaretoken": token}
        start.wait(timeout=10)
        return session.post(f"{base_url}/accounts/login/", data=form, allow_redirects=False, timeout=30)

    with ThreadPoolExecutor(max_workers=len(passwords)) as pool:
        return list(pool.map(guess, sessions, passwords))


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_guesses_gets_no_more_checks_than_the_limit(live_server, alice, settings, shared_cache):
    settings.LOGIN_FAILURES_PER_ACCOUNT = LIMIT
    settings.LOGIN_FAILURES_PER_IP = 1000  # the account's limit is the one under test

    responses = _at_once(live_server.url, [f"wrong-{n}" for n in range(30)])

    checked = [r for r in responses if r.status_code == 200 and "Please enter a correct" in r.text]
    refused = [r for r in responses if r.status_code == 429 and "Too many failed sign-in attempts" in r.text]
    assert (len(checked), len(refused)) == (LIMIT, 30 - LIMIT)
    # The right password after the burst is refused too: the account is locked.
    session, token = _signed_out_session(live_server.url)
    form = {"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": token}
    assert session.post(f"{live_server.url}/accounts/login/", data=form, allow_redirects=False).status_code == 429
