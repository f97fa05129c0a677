"""Sign-in throttling, the Content-Security-Policy and the other protective headers."""

import json
import re

import pytest
from django.conf import settings as django_settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from accounts.throttles import LoginThrottle
from common.security import client_ip
from tests.conftest import PASSWORD
from tests.test_settings import PRODUCTION, _shell

pytestmark = pytest.mark.django_db

LOCKED = b"Too many failed sign-in attempts"


def _sign_in(client, username, password, **extra):
    return client.post(
        "/accounts/login/",
        {"username": username, "password": password, "csrfmiddlewaretoken": client.csrf_token()},
        **extra,
    )


def _fail(client, username, times, **extra):
    for _ in range(times):
        response = _sign_in(client, username, "wrong-password", **extra)
        assert response.status_code == 200
        assert b"Please enter a correct username and password" in response.content


@pytest.fixture
def limits(settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 3
    settings.LOGIN_FAILURES_PER_IP = 5
    settings.LOGIN_LOCKOUT_SECONDS = 900
    return settings


def test_it_locks_an_account_after_repeated_wrong_passwords(anon_client, alice, limits):
    _fail(anon_client, "alice", 3)

    response = _sign_in(anon_client, "alice", PASSWORD)

    assert response.status_code == 429
    assert LOCKED in response.content and b"15 minutes" in response.content
    assert "_auth_user_id" not in anon_client.session


def test_the_account_lock_ignores_the_case_of_the_username(anon_client, alice, limits):
    _fail(anon_client, "ALICE", 3)

    assert _sign_in(anon_client, "alice", PASSWORD).status_code == 429


def test_a_correct_password_resets_the_account_count(anon_client, alice, limits):
    _fail(anon_client, "alice", 2)
    assert _sign_in(anon_client, "alice", PASSWORD).status_code == 302
    anon_client.logout()

    _fail(anon_client, "alice", 2)

    assert _sign_in(anon_client, "alice", PASSWORD).status_code == 302


def test_it_locks_an_address_that_tries_many_accounts(anon_client, alice, bob, limits):
    for name in ("carol", "dave"):
        _fail(anon_client, name, 2)
    _fail(anon_client, "erin", 1)  # five failures from one address, none reaching an account's limit

    response = _sign_in(anon_client, "bob", PASSWORD)

    assert response.status_code == 429


def test_another_address_is_not_locked_out_of_an_address_limit(alice, limits):
    from tests.conftest import CheckedClient

    attacker, person = CheckedClient(REMOTE_ADDR="203.0.113.9"), CheckedClient(REMOTE_ADDR="198.51.100.7")
    for name in ("carol", "dave", "erin", "frank", "grace"):
        _fail(attacker, name, 1)

    assert _sign_in(attacker, "alice", PASSWORD).status_code == 429
    assert _sign_in(person, "alice", PASSWORD).status_code == 302


def test_a_forged_forwarded_for_header_does_not_evade_the_address_limit(anon_client, alice, limits):
    for number, name in enumerate(("carol", "dave", "erin", "frank", "grace")):
        _fail(anon_client, name, 1, HTTP_X_FORWARDED_FOR=f"10.0.0.{number}")

    assert _sign_in(anon_client, "alice", PASSWORD, HTTP_X_FORWARDED_FOR="10.0.0.99").status_code == 429


def test_behind_a_trusted_proxy_the_address_is_the_one_the_proxy_saw(rf, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    request = rf.get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9", REMOTE_ADDR="127.0.0.1")

    assert client_ip(request) == "203.0.113.9"

    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request) == "127.0.0.1"


def test_the_lock_ends_after_the_lockout_time(anon_client, alice, limits, clock):
    limits.LOGIN_LOCKOUT_SECONDS = 1
    _fail(anon_client, "alice", 3)
    assert _sign_in(anon_client, "alice", PASSWORD).status_code == 429

    clock.advance(1.2)

    assert _sign_in(anon_client, "alice", PASSWORD).status_code == 302


def _wrong_guess() -> None:
    throttle = LoginThrottle("alice", "203.0.113.9")
    assert throttle.attempt() == 0
    throttle.failed()


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="REDIS_URL is not set: the Redis cache is not under test")
def test_with_redis_every_process_sees_the_same_failures(limits):
    # Two cache clients stand for two gunicorn processes: what one counts, the other refuses.
    assert isinstance(caches["default"], RedisCache)
    _wrong_guess()
    _wrong_guess()
    other_process = RedisCache(django_settings.REDIS_URL, {"KEY_PREFIX": caches["default"].key_prefix})
    assert other_process.get(LoginThrottle._key("account", "alice")) == 2

    _wrong_guess()

    assert LoginThrottle("alice", "198.51.100.7").seconds_locked() > 0


# --- Headers ---------------------------------------------------------------------------


def _csp(response) -> dict[str, list[str]]:
    directives = {}
    for part in response["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/admin/login/", "/no-such-page/"])
def test_every_page_forbids_inline_scripts_and_other_origins(client_alice, path):
    response = client_alice.get(path)

    csp = _csp(response)
    assert csp["script-src"] == ["'self'"]
    assert csp["default-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_pages_carry_no_inline_script(client_alice):
    html = client_alice.get("/").content.decode()

    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts and all(" src=" in tag for tag in scripts)
    assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", html), "an inline event handler attribute"


def test_htmx_is_told_not_to_eval_or_inject_styles(client_alice):
    html = client_alice.get("/").content.decode()

    config = json.loads(html.split('name="htmx-config" content=\'', 1)[1].split("'>", 1)[0])
    assert (config["allowEval"], config["allowScriptTags"], config["includeIndicatorStyles"]) == (False, False, False)


def test_production_cookies_are_secure_httponly_and_lax():
    result = _shell(
        "from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY,"
        " s.SESSION_COOKIE_SAMESITE, s.CSRF_COOKIE_SECURE, s.CSRF_COOKIE_HTTPONLY, s.SECURE_HSTS_SECONDS > 0)",
        PRODUCTION,
    )

    assert result.stdout.split() == ["True", "True", "Lax", "True", "True", "True"], result.stderr


def test_passwords_are_checked_by_the_validators():
    from django.contrib.auth.password_validation import get_default_password_validators

    names = {type(validator).__name__ for validator in get_default_password_validators()}

    assert {"MinimumLengthValidator", "CommonPasswordValidator", "NumericPasswordValidator"} <= names
