"""Quotas, the rate limit and the model catalogue refuse a message before anything is sent upstream."""

import os
import random
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.cache import cache
from django.utils import timezone

from conversations.models import Conversation, Message
from providers.catalogue import default_model_id
from providers.models import ChatModel
from tests.conftest import clear_cache, settle
from usage import quotas, rollups
from usage.models import Usage, UserQuota

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
# A Redis the rate limit test may write to (one key, deleted afterwards).
REDIS_URL = os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/3"


@pytest.fixture(autouse=True)
def _a_still_minute(monkeypatch):
    # The local-memory cache outlives a test: each test counts in a minute of its own.
    clear_cache()
    now = 1_800_000_000.0 + 60 * random.randrange(10**6)
    monkeypatch.setattr(quotas, "_clock", lambda: now)


def _start(client, content="Hello"):
    return client.post("/c/", {"content": content, "client_id": str(uuid.uuid4())}, htmx=True)


def _send(client, conversation, content="And then?"):
    return client.post(
        f"/c/{conversation.pk}/messages/", {"content": content, "client_id": str(uuid.uuid4())}, htmx=True
    )


def _spent(user, tokens, *, when=None):
    """A usage row counted in the running totals, as usage.services.record does, at any time."""
    usage = Usage.objects.create(
        user=user,
        model="mistralai/mistral-tiny",
        status="complete",
        total_tokens=tokens,
        created_at=when or timezone.now(),
    )
    rollups.add(usage)
    return usage


# --- Token quotas -----------------------------------------------------------------------
def test_a_person_over_their_daily_quota_is_told_why_and_nothing_is_sent(client_alice, alice, upstream, settings):
    settings.CHAT_DAILY_TOKEN_QUOTA = 1000
    _spent(alice, 1000)

    response = _start(client_alice, "Please answer")

    html = response.content.decode()
    assert response.status_code == 429
    assert "You have used your 1,000 tokens for today" in html
    assert "Please answer" in html  # the text stays in the composer
    assert upstream.requests == []
    assert not Conversation.objects.exists()


def test_a_person_over_their_monthly_quota_cannot_send_in_a_conversation(client_alice, alice, upstream, settings):
    settings.CHAT_MONTHLY_TOKEN_QUOTA = 500
    conversation = Conversation.objects.create(owner=alice, model="mistralai/mistral-tiny")
    _spent(alice, 300)
    _spent(alice, 300, when=timezone.now() - timedelta(hours=1))

    response = _send(client_alice, conversation, "One more")

    assert response.status_code == 429
    assert response["HX-Retarget"] == "#composer"
    assert "tokens for this month" in response.content.decode()
    assert upstream.requests == []
    assert not conversation.messages.exists()


def test_yesterdays_tokens_do_not_count_for_today(client_alice, alice, upstream, settings):
    settings.CHAT_DAILY_TOKEN_QUOTA = 100
    _spent(alice, 5000, when=timezone.now() - timedelta(days=1, hours=1))

    _start(client_alice)
    settle()

    assert len(upstream.completion_requests) == 1


def test_a_persons_own_quota_replaces_the_site_default_and_zero_means_unlimited(alice, bob, settings):
    settings.CHAT_DAILY_TOKEN_QUOTA = 100
    UserQuota.objects.create(user=alice, daily_tokens=0, monthly_tokens=None)
    UserQuota.objects.create(user=bob, daily_tokens=10)
    _spent(alice, 10_000)
    _spent(bob, 10)

    quotas.check_quota(alice)  # unlimited: no error
    with pytest.raises(quotas.LimitReached, match="10 tokens for today"):
        quotas.check_quota(bob)
    assert quotas.quota_for(alice) == quotas.Quota(daily=0, monthly=settings.CHAT_MONTHLY_TOKEN_QUOTA)


def test_regenerate_over_quota_shows_why_above_the_messages_and_sends_nothing(client_alice, alice, upstream, settings):
    _start(client_alice)
    settle()
    conversation = Conversation.objects.get(owner=alice)
    reply = conversation.messages.get(role="assistant")
    settings.CHAT_DAILY_TOKEN_QUOTA = 1  # the first reply used more

    response = client_alice.post(f"/c/{conversation.pk}/messages/{reply.pk}/regenerate/", htmx=True)

    assert response.status_code == 429
    assert "tokens for today" in response.content.decode()
    assert len(upstream.completion_requests) == 1
    assert conversation.messages.count() == 2


def test_a_failed_reply_is_retried_once_the_quota_allows_it(client_alice, alice, upstream, settings):
    settings.AIMLAPI_RETRIES = 0  # the 503 must reach the person, not be retried away
    upstream.fail(503)
    _start(client_alice)
    settle()
    conversation = Conversation.objects.get(owner=alice)
    reply = conversation.messages.get(role="assistant")
    settings.CHAT_DAILY_TOKEN_QUOTA = 5
    _spent(alice, 5)
    retry = f"/c/{conversation.pk}/messages/{reply.pk}/retry/"

    refused = client_alice.post(retry, htmx=True)
    settings.CHAT_DAILY_TOKEN_QUOTA = 0
    retried = client_alice.post(retry, htmx=True)
    settle()

    assert refused.status_code == 429
    assert retried.status_code == 200
    assert len(upstream.completion_requests) == 2
    assert Message.objects.get(pk=reply.pk).status == "complete"


# --- Usage rows: what the quotas count ------------------------------------------------
def test_every_completed_or_failed_call_records_its_usage(client_alice, alice, upstream):
    upstream.reply("Four words of reply")
    _start(client_alice)
    settle()
    upstream.fail(500)
    conversation = Conversation.objects.get(owner=alice)
    _send(client_alice, conversation)
    settle()

    rows = list(Usage.objects.order_by("id").values("user", "key", "model", "status", "error_code", "total_tokens"))
    assert rows == [
        {
            "user": alice.pk,
            "key": None,
            "model": "mistralai/mistral-tiny",
            "status": "complete",
            "error_code": "",
            "total_tokens": 13,
        },
        {
            "user": alice.pk,
            "key": None,
            "model": "mistralai/mistral-tiny",
            "status": "error",
            "error_code": "server_error",
            "total_tokens": 0,
        },
    ]
    assert quotas.tokens_today_and_this_month(alice)[0] == 13


def test_a_reply_without_a_key_records_no_usage_since_nothing_was_sent(client_alice, upstream, settings):
    settings.AIMLAPI_API_KEY = ""

    _start(client_alice)
    settle()

    assert not Usage.objects.exists()


# --- The rate limit -----------------------------------------------------------------------
def test_the_rate_limit_refuses_a_message_readably_and_sends_nothing(client_alice, client_bob, upstream, settings):
    settings.CHAT_RATE_LIMIT_PER_MINUTE = 2
    _start(client_alice, "one")
    _start(client_alice, "two")
    settle()

    response = _start(client_alice, "three")

    html = response.content.decode()
    assert response.status_code == 429
    assert "faster than this site allows (2 a minute)" in html
    assert "three" in html
    assert len(upstream.completion_requests) == 2
    assert Conversation.objects.count() == 2
    # Someone else is not held back.
    _start(client_bob, "bob's first")
    settle()
    assert len(upstream.completion_requests) == 3


def test_the_rate_limit_counts_again_in_the_next_minute(alice, settings, monkeypatch):
    settings.CHAT_RATE_LIMIT_PER_MINUTE = 1
    quotas.check_rate(alice.pk, now=1_800_000_000.0)
    with pytest.raises(quotas.LimitReached, match="Try again in 60 seconds"):
        quotas.check_rate(alice.pk, now=1_800_000_000.0)

    quotas.check_rate(alice.pk, now=1_800_000_060.0)


def test_zero_turns_the_rate_limit_off(alice, settings):
    settings.CHAT_RATE_LIMIT_PER_MINUTE = 0

    for _ in range(100):
        quotas.check_rate(alice.pk)


def test_the_rate_limit_is_shared_by_processes_through_redis(settings):
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {error}")
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    settings.CHAT_RATE_LIMIT_PER_MINUTE = 3
    user_id, now = random.randrange(10**12, 10**13), time.time()
    key = f"chatsite:rate:{user_id}:{int(now // 60)}"
    try:
        quotas.check_rate(user_id, now=now)
        quotas.check_rate(user_id, now=now)
        script = (
            "from usage import quotas\n"
            f"quotas.check_rate({user_id}, now={now!r})\n"
            "try:\n"
            f"    quotas.check_rate({user_id}, now={now!r})\n"
            "except quotas.LimitReached:\n"
            "    print('refused')\n"
        )
        environment = {**os.environ, "REDIS_URL": REDIS_URL, "CHAT_RATE_LIMIT_PER_MINUTE": "3"}
        environment.pop("DATABASE_URL", None)  # the check needs no database
        result = subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", "shell", "--verbosity", "0", "-c", script],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "refused"  # the third message here made it the fourth there
        with pytest.raises(quotas.LimitReached):
            quotas.check_rate(user_id, now=now)
    finally:
        cache.delete(key)


# --- The model catalogue ------------------------------------------------------------------
@pytest.fixture
def catalogue():
    tiny, _ = ChatModel.objects.get_or_create(
        model_id="mistralai/mistral-tiny", defaults={"display_name": "Mistral Tiny", "context_window": 32000}
    )
    small = ChatModel.objects.create(
        model_id="mistralai/mistral-small", display_name="Mistral Small", context_window=8000
    )
    retired = ChatModel.objects.create(model_id="old/retired", display_name="Retired Model", enabled=False)
    return tiny, small, retired


def test_the_chat_page_offers_the_enabled_models(client_alice, catalogue):
    html = client_alice.get("/").content.decode()

    assert '<option value="mistralai/mistral-tiny" selected>Mistral Tiny</option>' in html
    assert '<option value="mistralai/mistral-small">Mistral Small</option>' in html
    assert "Retired Model" not in html


def test_a_new_chat_uses_the_chosen_model_and_keeps_it(client_alice, alice, upstream, catalogue):
    _start_with = client_alice.post(
        "/c/",
        {"content": "Hi", "client_id": str(uuid.uuid4()), "settings-model": "mistralai/mistral-small"},
        htmx=True,
    )
    settle()
    conversation = Conversation.objects.get(owner=alice)
    _send(client_alice, conversation)
    settle()

    assert _start_with.status_code == 200
    assert conversation.model == "mistralai/mistral-small"
    assert [r.json["model"] for r in upstream.completion_requests] == ["mistralai/mistral-small"] * 2


def test_a_disabled_model_cannot_be_chosen(client_alice, alice, upstream, catalogue):
    conversation = Conversation.objects.create(owner=alice, model="mistralai/mistral-tiny")

    response = client_alice.post(f"/c/{conversation.pk}/settings/", {"settings-model": "old/retired"}, htmx=True)

    assert response.status_code == 422
    assert "Select a valid choice" in response.content.decode()
    conversation.refresh_from_db()
    assert conversation.model == "mistralai/mistral-tiny"


def test_a_conversation_whose_model_was_turned_off_says_so_and_sends_nothing(client_alice, alice, upstream, catalogue):
    conversation = Conversation.objects.create(owner=alice, model="old/retired")

    response = _send(client_alice, conversation, "Still there?")
    page = client_alice.get(f"/c/{conversation.pk}/").content.decode()

    assert response.status_code == 422
    assert "has been turned off by an admin" in response.content.decode()
    assert upstream.requests == []
    assert not conversation.messages.exists()
    assert "Retired Model (turned off)" in page  # it keeps its model, shown as such


def test_max_tokens_is_checked_against_the_models_context_window(client_alice, alice, catalogue):
    conversation = Conversation.objects.create(owner=alice, model="mistralai/mistral-small")

    response = client_alice.post(
        f"/c/{conversation.pk}/settings/",
        {"settings-model": "mistralai/mistral-small", "settings-max_tokens": "9000"},
        htmx=True,
    )

    assert response.status_code == 422
    assert "reads at most 8,000 tokens" in response.content.decode()


def test_a_models_default_parameters_are_sent_unless_the_chat_sets_its_own(client_alice, alice, upstream, catalogue):
    tiny = catalogue[0]
    tiny.default_params = {"temperature": 0.3, "max_tokens": 200}
    tiny.save()
    conversation = Conversation.objects.create(owner=alice, model=tiny.model_id, max_tokens=50)

    _send(client_alice, conversation)
    settle()

    body = upstream.completion_requests[0].json
    assert (body["temperature"], body["max_tokens"]) == (0.3, 50)


def test_an_unusable_default_parameter_is_refused_in_the_admin(client_admin, catalogue):
    tiny = catalogue[0]

    response = client_admin.post(
        f"/admin/providers/chatmodel/{tiny.pk}/change/",
        {
            "model_id": tiny.model_id,
            "display_name": "Mistral Tiny",
            "context_window": 32000,
            "default_params": '{"temperature": 7}',
            "enabled": "on",
        },
    )

    assert response.status_code == 200
    assert "temperature must be between" in response.content.decode()


def test_the_default_model_of_a_new_chat_skips_a_turned_off_one(settings, catalogue):
    tiny = catalogue[0]
    tiny.enabled = False
    tiny.save()

    assert default_model_id() == "mistralai/mistral-small"
