"""What a person reads when the upstream fails: it names the upstream actually used, counts
seconds in good English, sends them to an admin for a refused key, and says that a rate-limited
reply is waiting, and for how long, while it is retried."""

import logging
import re
import uuid
from pathlib import Path

import pytest

from conversations.models import Conversation
from providers import keys, wording
from providers.models import ProviderKey
from providers.upstream import UpstreamConfig, UpstreamError, chat_completion
from tests.conftest import settle, sse_events

CHROMIUM = Path("/usr/bin/chromium")
if CHROMIUM.exists():
    from playwright.sync_api import expect

    from tests.browser.conftest import browser, open_page, page  # noqa: F401 (fixtures)
    from tests.browser.helpers import SAVED, send, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def _host(upstream) -> str:
    return upstream.base_url.split("/")[2]


def _config(upstream, **extra) -> UpstreamConfig:
    return UpstreamConfig(base_url=upstream.base_url, api_key="sk-wording-test", **extra)


def _call(config):
    return chat_completion(messages=[{"role": "user", "content": "Hi"}], model="m", config=config)


@pytest.fixture
def chat(alice):
    return Conversation.objects.create(owner=alice, model="mistralai/mistral-tiny")


def _send(client, conversation, content="Tell me"):
    data = {"content": content, "client_id": str(uuid.uuid4())}
    return client.post(f"/c/{conversation.pk}/messages/", data, htmx=True)


def _reply(conversation):
    return conversation.messages.filter(role="assistant").latest("id")


# --- which upstream ------------------------------------------------------------------------
def test_an_error_of_a_local_upstream_names_its_address_not_the_ai_ml_api(client_alice, chat, upstream):
    upstream.fail(500)

    _send(client_alice, chat)
    settle()

    error = _reply(chat).error
    assert error.startswith(f"The upstream at {_host(upstream)} is having trouble right now.")
    assert "AI/ML API" not in error


def test_an_error_through_a_stored_key_names_the_key(client_alice, alice, chat, upstream):
    key = ProviderKey(label="Local llama", base_url=upstream.base_url, is_default=True)
    keys.set_secret(key, "sk-local-llama-0123456789")
    key.save()
    upstream.fail(500)

    _send(client_alice, chat)
    settle()

    assert _reply(chat).error.startswith("The upstream “Local llama” is having trouble right now.")


def test_the_ai_ml_api_is_still_called_by_its_name():
    config = UpstreamConfig(base_url="https://api.aimlapi.com/v1", api_key="k", label="Team key")
    assert wording.name(config) == "the AI/ML API"


# --- seconds -------------------------------------------------------------------------------
def test_one_second_is_one_second(upstream):
    upstream.fail(429, headers={"Retry-After": "1"})

    config = _config(upstream)
    with pytest.raises(UpstreamError) as caught:
        _call(config)

    assert "Try again in 1 second." in wording.explain(caught.value, config)
    assert "1 seconds" not in wording.explain(caught.value, config)


def test_a_timeout_of_one_second_reads_well(upstream):
    upstream.hang(3)

    config = _config(upstream, read_timeout=1)
    with pytest.raises(UpstreamError) as caught:
        _call(config)

    assert f"The upstream at {_host(upstream)} did not answer within 1 second." in wording.explain(caught.value, config)


# --- a refused key -------------------------------------------------------------------------
def test_a_refused_key_tells_the_person_to_ask_an_admin_and_the_log_names_the_key(client_alice, chat, upstream, caplog):
    upstream.fail(401, {"error": {"message": "Invalid API key"}})

    with caplog.at_level(logging.WARNING, logger="providers.upstream"):
        _send(client_alice, chat)
        settle()

    error = _reply(chat).error
    assert "refused the API key. Please ask an admin to check it" in error
    assert "AIMLAPI_API_KEY" not in error
    assert any(
        "AIMLAPI_API_KEY" in record.getMessage() and "code=auth" in record.getMessage() for record in caplog.records
    )


# --- a rate-limited reply says it waits ----------------------------------------------------
def test_the_sentence_of_a_wait_says_how_long():
    limited = UpstreamError("rate_limited", 429, retry_after=5)
    down = UpstreamError("connection")

    assert wording.waiting(5, limited, upstream="the AI/ML API").startswith(
        "Waiting 5 seconds: the AI/ML API is receiving too many requests."
    )
    assert wording.waiting(0.3, down) == ("Waiting 1 second before trying again: the upstream did not answer properly…")


def test_the_stream_of_a_reply_retried_after_a_429_says_it_waits_and_for_how_long(client_alice, chat, upstream):
    # Two seconds: long enough for the stream to be followed before the wait ends.
    upstream.fail(429, headers={"Retry-After": "2"})
    upstream.stream("Here I am")

    _send(client_alice, chat)
    reply = _reply(chat)
    events = sse_events(client_alice.get(f"/c/{chat.pk}/messages/{reply.pk}/stream/"))

    waiting = [data for event, _, data in events if event == "waiting"]
    assert waiting[0] == (
        f"Waiting 2 seconds: the upstream at {_host(upstream)} is receiving too many requests. "
        "Then chatsite tries again…"
    )
    assert waiting[-1] == ""  # and then it is written
    assert "".join(data for event, _, data in events if event == "text") == "Here I am"
    reply.refresh_from_db()
    assert reply.status == "complete"


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed (/usr/bin/chromium)")
def test_the_pane_shows_the_wait_of_a_rate_limited_reply_then_the_reply(page, live_server, upstream, alice):
    upstream.fail(429, headers={"Retry-After": "2"})
    upstream.stream("Here I am")
    sign_in(page, live_server, alice)

    send(page, "Anyone?")

    reply = page.locator(SAVED).nth(1)
    expect(reply.locator("[data-progress-label]")).to_have_text(
        re.compile(r"^Waiting 2 seconds: the upstream at [\d.:]+ is receiving")
    )
    expect(reply).to_have_class(re.compile(r"\bis-complete\b"))
    expect(reply.locator(".message__body")).to_have_text("Here I am")
