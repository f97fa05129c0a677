"""Shared fixtures: two users (owner and stranger), CSRF-enforcing clients that check every
response for the upstream key, and the fake OpenAI-compatible upstream over real HTTP."""

import json
import logging
import os
import time

import pytest
from django.conf import settings as django_settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.test import Client

from common import clock as common_clock
from common import secrets, sse
from conversations.generation import live
from tests.fake_upstream import FakeUpstream

API_KEY = "test-canary-key-must-never-leak-7f3a9c"  # also set in pyproject.toml's pytest env
PASSWORD = "correct-horse-battery-staple"


def pytest_configure(config):
    # Tests serve static files from static/ through the finders, without collectstatic.
    django_settings.STATIC_ROOT = None
    django_settings.WHITENOISE_USE_FINDERS = True
    django_settings.STORAGES = {
        **django_settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # Password hashing is deliberately slow; tests create many users.
    django_settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # With REDIS_URL, this run's cache keys (sessions, breaker state) stay apart from those of
    # any other run or server using the same Redis database.
    django_settings.CACHES["default"]["KEY_PREFIX"] = f"chatsite-test-{os.getpid()}"


def secrets_in(text: str) -> list[str]:
    """The upstream keys (the canary and every stored key this process has seen) found in `text`."""
    return [secret for secret in {API_KEY, *secrets.known()} if secret in text]


class CheckedClient(Client):
    """A browser stand-in: enforces CSRF and fails the test if a response shows any upstream key."""

    def __init__(self, **kwargs):
        super().__init__(enforce_csrf_checks=True, **kwargs)

    def request(self, **request):
        response = super().request(**request)
        if not getattr(response, "streaming", False):
            leaked = secrets_in(response.content.decode(errors="replace"))
            assert not leaked, "an upstream API key appeared in a response"
        return response

    def csrf_token(self) -> str:
        self.get("/", follow=True)  # a page with a form sets the CSRF cookie, as in a browser
        return self.cookies["csrftoken"].value

    def post(self, path, data=None, *, htmx=False, **extra):
        if "csrftoken" not in self.cookies:
            self.csrf_token()
        headers = {"X-CSRFToken": self.cookies["csrftoken"].value, **extra.pop("headers", {})}
        if htmx:
            headers["HX-Request"] = "true"
        return super().post(path, data, headers=headers, **extra)

    def get(self, path, data=None, *, htmx=False, **extra):
        headers = dict(extra.pop("headers", {}))
        if htmx:
            headers["HX-Request"] = "true"
        return super().get(path, data, headers=headers, **extra)


def is_generating(message_id: int) -> bool:
    """Whether the reply is being generated in this process (the pool's running replies)."""
    return message_id in live.running


def settle(timeout: float = 10.0) -> None:
    """Wait until every reply started by the test is generated and saved."""
    deadline = time.monotonic() + timeout
    while live.running:  # a reply leaves it once saved and titled
        assert time.monotonic() < deadline, f"a reply was still being generated after {timeout} s"
        time.sleep(0.01)


def sse_events(response) -> list[tuple[str, str, object]]:
    """Read a server-sent events response to its end: (event, id, decoded JSON data) for each event."""
    assert response["Content-Type"] == "text/event-stream"
    return [(event.event, event.id or "", json.loads(event.data)) for event in sse.parse(response.streaming_content)]


@pytest.fixture(autouse=True)
def _generations_end_with_the_test():
    # A reply still being generated would write to the database of the next test.
    yield
    settle()


def clear_cache() -> None:
    """Empty this run's cache. On Redis only this run's keys go (FLUSHDB would also empty the
    cache of any other run or server sharing the database)."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        client = backend._cache.get_client(write=True)
        stale = list(client.scan_iter(match=f"{backend.key_prefix}:*", count=1000))
        if stale:
            client.delete(*stale)
    else:
        backend.clear()


class FakeClock:
    """The real clock plus the seconds a test moved it forward by."""

    def __init__(self):
        self.offset = 0.0

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


@pytest.fixture
def clock(monkeypatch):
    """`common.clock`, moved forward by `clock.advance(seconds)` instead of waiting that long."""
    fake = FakeClock()
    monkeypatch.setattr(common_clock, "time", fake.time)
    monkeypatch.setattr(common_clock, "monotonic", fake.monotonic)
    return fake


@pytest.fixture(autouse=True)
def _empty_cache():
    # Counters in the cache (sign-in failures, rate limits, the upstream's breaker) must not carry
    # over between tests: emptied before each test, after the replies of the last one have ended.
    clear_cache()
    yield
    clear_cache()


@pytest.fixture(autouse=True)
def _key_never_logged(caplog):
    # caplog sees every record before any filter: a key must never reach a log line at all.
    caplog.set_level(logging.DEBUG)
    yield
    assert not secrets_in(caplog.text), "an upstream API key appeared in a log line"


@pytest.fixture(autouse=True)
def _settings_sanity(settings):
    assert settings.AIMLAPI_API_KEY == API_KEY, "pytest must run with the canary key from pyproject.toml"


@pytest.fixture(scope="session", autouse=True)
def _test_database_dropped_cleanly(django_db_setup, django_db_blocker):
    # On PostgreSQL a thread of some test (a reply's generator, a live server) can still hold a
    # pooled connection at the end, and the test database cannot be dropped while it is open.
    yield
    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


@pytest.fixture(scope="session")
def _upstream_server():
    server = FakeUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def upstream(_upstream_server, settings):
    """The fake upstream, reset, with chatsite pointed at it through AIMLAPI_BASE_URL."""
    _upstream_server.reset()
    settings.AIMLAPI_BASE_URL = _upstream_server.base_url
    yield _upstream_server
    _upstream_server.reset()


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user(username="alice", password=PASSWORD)


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user(username="bob", password=PASSWORD)


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser(username="root", password=PASSWORD)


@pytest.fixture
def client_admin(admin_user):
    client = CheckedClient()
    client.force_login(admin_user)
    return client


@pytest.fixture
def anon_client():
    return CheckedClient()


@pytest.fixture
def client_alice(alice):
    client = CheckedClient()
    client.force_login(alice)
    return client


@pytest.fixture
def client_bob(bob):
    client = CheckedClient()
    client.force_login(bob)
    return client
