"""A message that fails or is refused in Chromium: the text is kept, the reason is shown by the
composer or in the reply, and Retry answers in place."""

import re

import pytest
from playwright.sync_api import expect

from conversations.models import Conversation, Message
from tests.browser.helpers import BODY, COMPOSER, SAVED, FullLoads, expect_finished, send, sign_in
from tests.conftest import clear_cache

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_keeps_the_message_when_upstream_fails_and_retries_in_place(page, live_server, upstream, alice):
    upstream.fail(500)
    sign_in(page, live_server, alice)
    full_loads = FullLoads(page)
    saved = page.locator(SAVED)

    send(page, "Hello?")

    expect(saved).to_have_count(2)
    expect(saved.nth(0).locator(BODY)).to_have_text("Hello?")
    failed = saved.nth(1)
    expect(failed).to_have_class(re.compile(r"\bis-error\b"))
    expect(failed.locator(".message__error")).to_contain_text("is having trouble right now")
    failed_id = failed.get_attribute("id")
    page.evaluate("window.__marker = 1")

    failed.get_by_role("button", name="Retry").click()

    expect_finished(saved.nth(1), "Echo: Hello?")
    expect(page.locator("#message-list .message__error")).to_have_count(0)
    expect(saved).to_have_count(2)
    expect(saved.nth(0).locator(BODY)).to_have_text("Hello?")
    assert saved.nth(1).get_attribute("id") == failed_id
    expect(page.get_by_role("button", name="Retry")).to_have_count(0)
    expect(page.locator("#toast")).to_be_hidden()
    assert page.evaluate("window.__marker") == 1
    assert full_loads.urls == []
    assert len(upstream.completion_requests) == 2
    assert list(Message.objects.values_list("role", "status")) == [("user", "complete"), ("assistant", "complete")]


def test_a_request_over_the_size_limit_says_so_and_keeps_the_text(page, live_server, upstream, alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    huge = "word " * 600
    sign_in(page, live_server, alice)

    send(page, huge)

    expect(page.locator("#toast")).to_have_text("The request is too large. Shorten the message and send it again.")
    expect(page.locator(COMPOSER)).to_have_value(huge)
    expect(page.locator(SAVED)).to_have_count(0)
    assert upstream.completion_requests == []
    assert not Message.objects.exists()


def test_it_shows_a_form_error_by_the_composer_and_keeps_the_text(page, live_server, upstream, alice, settings):
    settings.CHAT_MAX_MESSAGE_CHARS = 50
    too_long = "Please summarise this paragraph for me in one line: " + "x" * 8
    assert len(too_long) == 60
    sign_in(page, live_server, alice)
    textarea = page.locator(COMPOSER)
    error = page.locator("#composer #composer-errors .form-error")
    saved = page.locator(SAVED)

    send(page, too_long)

    expect(error).to_have_text(
        "This message is too long: 60 characters, and the limit is 50. "
        "Nothing was sent; shorten it or split it into parts."
    )
    expect(textarea).to_have_value(too_long)
    expect(textarea).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#message-list article.message")).to_have_count(0)
    expect(page.locator("#message-list .empty-state")).to_be_visible()
    expect(page.locator("#toast")).to_be_hidden()
    expect(page).to_have_url(f"{live_server.url}/")
    assert upstream.completion_requests == []
    assert not Conversation.objects.exists()
    assert not Message.objects.exists()

    # The swapped-in composer still sends, and the same limit holds inside a conversation.
    send(page, "Short enough.")
    expect(saved).to_have_count(2)
    expect(error).to_have_count(0)
    expect_finished(saved.nth(1), "Echo: Short enough.")
    send(page, too_long)
    expect(error).to_contain_text("This message is too long: 60 characters")
    expect(textarea).to_have_value(too_long)
    expect(saved).to_have_count(2)
    assert len(upstream.completion_requests) == 1
    assert Message.objects.count() == 2


def test_it_shows_the_rate_limit_by_the_composer_and_keeps_the_text(
    page, live_server, upstream, alice, settings, monkeypatch
):
    from usage import quotas

    clear_cache()
    monkeypatch.setattr(quotas, "_clock", lambda: 1_800_000_000.0)  # one minute for the whole test
    settings.CHAT_RATE_LIMIT_PER_MINUTE = 1
    sign_in(page, live_server, alice)
    saved = page.locator(SAVED)
    send(page, "First message.")
    expect_finished(saved.nth(1), "Echo: First message.")

    send(page, "Second message, too soon.")

    expect(page.locator("#composer #composer-errors .form-error")).to_contain_text(
        "You are sending messages faster than this site allows (1 a minute)"
    )
    expect(page.locator(COMPOSER)).to_have_value("Second message, too soon.")
    expect(saved).to_have_count(2)
    expect(page.locator("#toast")).to_be_hidden()
    assert len(upstream.completion_requests) == 1
    assert Message.objects.count() == 2
