"""Settings come from the environment (and .env), fail loudly, and pass Django's deploy check."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from chatsite import env
from common.log import RedactSecretsFilter

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "ALLOWED_HOSTS": "chat.example.com",
    "HTTPS": "1",
}


def _manage(*args, env_overrides=None, cwd=ROOT):
    """Run manage.py in a fresh process with only the given environment (no pytest env)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AIMLAPI_", "DJANGO_", "PYTEST"))}
    for name in ("SECRET_KEY", "DEBUG", "HTTPS", "ALLOWED_HOSTS", "DATABASE_URL"):
        clean.pop(name, None)
    clean["CHATSITE_ENV_FILE"] = str(ROOT / "var" / "no-such-env-file")  # a developer's .env stays out
    clean.update(env_overrides or {})
    return subprocess.run(  # noqa: S603
        [sys.executable, str(ROOT / "manage.py"), *args], cwd=cwd, env=clean, capture_output=True, text=True, timeout=60
    )


def _shell(script: str, env_overrides: dict):
    return _manage("shell", "--verbosity", "0", "-c", script, env_overrides=env_overrides)


def test_the_deploy_check_is_clean_with_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env_overrides=PRODUCTION)

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_it_refuses_to_serve_without_a_secret_key_when_debug_is_off(tmp_path):
    result = _shell("import chatsite.wsgi", {"DEBUG": "0", "CHATSITE_ENV_FILE": str(tmp_path / "none")})

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_a_bare_checkout_without_a_secret_key_can_be_checked_and_migrated(tmp_path):
    bare = {"DEBUG": "0", "CHATSITE_ENV_FILE": str(tmp_path / "none"), "DATABASE_URL": f"sqlite:///{tmp_path}/db"}

    assert _manage("check", env_overrides=bare).returncode == 0
    assert _manage("makemigrations", "--check", "--dry-run", env_overrides=bare).returncode == 0
    assert _manage("migrate", "--noinput", env_overrides=bare).returncode == 0
    deploy = _manage("check", "--deploy", "--fail-level", "WARNING", env_overrides=bare)
    assert deploy.returncode != 0 and "security.W009" in deploy.stderr


def test_it_starts_with_a_development_key_when_debug_is_on(tmp_path):
    result = _manage("check", env_overrides={"DEBUG": "1", "CHATSITE_ENV_FILE": str(tmp_path / "none")})

    assert result.returncode == 0, result.stderr


def test_a_bad_value_names_the_variable(tmp_path):
    result = _manage("check", env_overrides={**PRODUCTION, "AIMLAPI_TIMEOUT": "soon"})

    assert result.returncode != 0
    assert "AIMLAPI_TIMEOUT must be a number; got 'soon'." in result.stderr


def test_the_env_file_is_read_but_real_environment_variables_win(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SECRET_KEY=from-the-file-0123456789012345678901234567890123456789\nAIMLAPI_MODEL=from/file\n")
    script = "from django.conf import settings; print(settings.AIMLAPI_MODEL, settings.SECRET_KEY[:14])"

    result = _shell(script, {"CHATSITE_ENV_FILE": str(env_file), "AIMLAPI_MODEL": "from/env"})

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["from/env", "from-the-file-"]


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), ("true", True), ("YES", True), ("off", False), ("0", False), ("", False)]
)
def test_env_bool_reads_common_spellings(monkeypatch, value, expected):
    monkeypatch.setenv("FLAG", value)

    assert env.env_bool("FLAG", False) is expected


def test_env_helpers_fail_loudly(monkeypatch):
    monkeypatch.setenv("FLAG", "maybe")
    monkeypatch.setenv("COUNT", "-3")
    with pytest.raises(ImproperlyConfigured, match="FLAG must be one of"):
        env.env_bool("FLAG")
    with pytest.raises(ImproperlyConfigured, match="COUNT must be at least 0"):
        env.env_int("COUNT", 1, minimum=0)


def test_env_list_splits_on_commas(monkeypatch):
    monkeypatch.setenv("HOSTS", " a.example.com, b.example.com ,")

    assert env.env_list("HOSTS", []) == ["a.example.com", "b.example.com"]


@pytest.mark.django_db
def test_sqlite_runs_in_wal_mode_with_a_busy_timeout_and_immediate_transactions(settings):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite settings only")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] == 20000
    assert settings.DATABASES["default"]["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_a_postgres_url_selects_postgresql():
    script = "from django.conf import settings; d = settings.DATABASES['default']; print(d['ENGINE'], d['NAME'])"

    result = _shell(script, {**PRODUCTION, "DATABASE_URL": "postgres://u:p@127.0.0.1:5432/chat"})

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "chat"]


def test_the_log_filter_scrubs_the_key_from_records(settings):
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "key=%s", (settings.AIMLAPI_API_KEY,), None)

    RedactSecretsFilter().filter(record)

    assert record.getMessage() == "key=[redacted]"


@pytest.mark.parametrize(
    ("redis_url", "engine", "cache"),
    [
        ("redis://127.0.0.1:6379/0", "django.contrib.sessions.backends.cached_db", "RedisCache"),
        ("", "django.contrib.sessions.backends.db", "LocMemCache"),
    ],
)
def test_redis_url_puts_sessions_and_the_cache_in_redis(redis_url, engine, cache):
    script = "from django.conf import settings; print(settings.SESSION_ENGINE, settings.CACHES['default']['BACKEND'])"

    result = _shell(script, {**PRODUCTION, "REDIS_URL": redis_url})

    assert result.returncode == 0, result.stderr
    session_engine, backend = result.stdout.split()
    assert session_engine == engine
    assert backend.endswith(cache)


def test_the_resilience_settings_reach_the_upstream_client():
    script = (
        "from providers.upstream import UpstreamConfig; c = UpstreamConfig.from_settings(); "
        "print(c.retries, c.retry_base_delay, c.retry_max_delay, c.retry_after_max, c.turn_budget, "
        "c.breaker_failures, c.breaker_window, c.breaker_cooldown)"
    )

    defaults = _shell(script, PRODUCTION)
    tuned = _shell(script, {**PRODUCTION, "AIMLAPI_RETRIES": "0", "AIMLAPI_TURN_BUDGET": "12.5"})

    assert defaults.returncode == 0, defaults.stderr
    assert defaults.stdout.split() == ["2", "0.5", "8.0", "20.0", "90.0", "5", "60.0", "30.0"]
    assert tuned.stdout.split()[0] == "0" and tuned.stdout.split()[4] == "12.5"


def test_postgresql_connections_come_from_a_pool_per_process():
    script = (
        "from django.conf import settings; d = settings.DATABASES['default']; "
        "print(d['CONN_MAX_AGE'], d.get('OPTIONS', {}).get('pool', {}).get('max_size', 'none'))"
    )
    url = "postgres://u:p@127.0.0.1:5432/chat"

    pooled = _shell(script, {**PRODUCTION, "DATABASE_URL": url, "DATABASE_POOL_MAX": "7"})
    unpooled = _shell(script, {**PRODUCTION, "DATABASE_URL": url, "DATABASE_POOL_MAX": "0"})

    assert pooled.returncode == 0, pooled.stderr
    assert pooled.stdout.split() == ["0", "7"]
    assert unpooled.stdout.split() == ["60", "none"]
