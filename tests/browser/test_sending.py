"""Sending a message in Chromium: the reply appears without a page load, Enter sends and
Shift+Enter adds a line, and the composer shows what is in flight until the reply is written."""

import re
import time

import pytest
from playwright.sync_api import Page, expect

from conversations.models import Conversation, Message
from tests.browser.helpers import (
    BODY,
    COMPOSER,
    SAVED,
    TIMEOUT_MS,
    WRITING,
    FullLoads,
    conversation_url,
    expect_finished,
    send,
    sign_in,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


class HeldSends:
    """Keeps the browser's sends (POSTs of the composer) waiting until `release()`.

    A send now returns at once, so a test that looks at the page while one is in flight
    holds it here instead of racing it.
    """

    def __init__(self, page: Page):
        self.routes = []
        self._page = page
        page.route(re.compile(r"/c/(\d+/messages/)?$"), self._hold)

    def _hold(self, route) -> None:
        if route.request.method == "POST":
            self.routes.append(route)
        else:
            route.continue_()

    def release(self) -> None:
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while not self.routes:
            assert time.monotonic() < deadline, "the browser never sent the message"
            self._page.wait_for_timeout(10)  # lets Playwright deliver the held request
        while self.routes:
            self.routes.pop(0).continue_()


def test_it_shows_the_reply_without_reloading_the_page(page, live_server, upstream, alice):
    sign_in(page, live_server, alice)
    full_loads = FullLoads(page)
    page.evaluate("window.__marker = 1")
    saved = page.locator(SAVED)

    send(page, "What is htmx?")

    expect(saved).to_have_count(2)
    expect(saved.nth(0)).to_have_class(re.compile(r"\bmessage--user\b"))
    expect(saved.nth(0).locator(BODY)).to_have_text("What is htmx?")
    expect(saved.nth(1)).to_have_class(re.compile(r"\bmessage--assistant\b"))
    expect_finished(saved.nth(1), "Echo: What is htmx?")
    conversation = Conversation.objects.get(owner=alice)
    expect(page).to_have_url(conversation_url(live_server, conversation))
    expect(page.locator("#conversation-list [aria-current=page]")).to_have_text("What is htmx?")
    assert page.evaluate("window.__marker") == 1
    assert full_loads.urls == []

    send(page, "And Django?")

    expect(saved).to_have_count(4)
    expect(saved.nth(2).locator(BODY)).to_have_text("And Django?")
    expect_finished(saved.nth(3), "Echo: And Django?")
    expect(page.locator(COMPOSER)).to_have_value("")
    expect(page).to_have_url(conversation_url(live_server, conversation))
    assert page.evaluate("window.__marker") == 1
    assert full_loads.urls == []
    # The second request carried the first turn as history.
    second = upstream.completion_requests[1].json["messages"]
    assert [m["content"] for m in second] == ["What is htmx?", "Echo: What is htmx?", "And Django?"]

    page.reload()

    assert page.evaluate("typeof window.__marker") == "undefined"
    assert full_loads.urls == [conversation_url(live_server, conversation)]  # the detector sees a real load
    expect(saved.locator(BODY)).to_have_text(
        ["What is htmx?", "Echo: What is htmx?", "And Django?", "Echo: And Django?"]
    )
    assert len(upstream.completion_requests) == 2


def test_it_inserts_a_newline_on_shift_enter_and_sends_on_enter(page, live_server, upstream, alice):
    sign_in(page, live_server, alice)
    textarea = page.locator(COMPOSER)

    textarea.press_sequentially("First line")
    textarea.press("Shift+Enter")
    textarea.press_sequentially("second line")

    expect(textarea).to_have_value("First line\nsecond line")
    expect(page.locator("#message-list article.message")).to_have_count(0)
    assert upstream.completion_requests == []

    textarea.press("Enter")

    saved = page.locator(SAVED)
    expect(saved).to_have_count(2)
    expect_finished(saved.nth(1), "Echo: First line\nsecond line")
    assert saved.nth(0).locator(BODY).inner_text() == "First line\nsecond line"
    # Had Shift+Enter sent "First line" on its own, the upstream would have seen two requests.
    assert len(upstream.completion_requests) == 1
    assert upstream.completion_requests[0].json["messages"][-1]["content"] == "First line\nsecond line"
    assert Message.objects.get(role=Message.Role.USER).content == "First line\nsecond line"


def test_it_disables_send_and_shows_the_message_while_it_is_sent_then_offers_stop(page, live_server, upstream, alice):
    sign_in(page, live_server, alice)
    textarea = page.locator(COMPOSER)
    send_button = page.locator("#composer button[type=submit]")
    stop_button = page.locator("#composer [data-composer-stop]")
    saved = page.locator(SAVED)
    echo = page.locator("#message-list article.message--user[data-optimistic]")
    held = HeldSends(page)

    # The first message of a new chat: the whole pane is swapped when the server answers.
    send(page, "Are you there?")
    expect(send_button).to_be_disabled()
    expect(echo.locator(BODY)).to_have_text("Are you there?")
    expect(page.locator("#message-list article.message--assistant[data-optimistic]")).to_contain_text(
        "Waiting for the reply…"
    )
    held.release()
    expect(page.locator("#message-list [data-optimistic]")).to_have_count(0)
    expect(saved).to_have_count(2)
    expect_finished(saved.nth(1), "Echo: Are you there?")
    expect(send_button).to_be_enabled()
    expect(textarea).to_have_value("")

    # A follow-up: the turn is appended and the composer is reset out of band. While the
    # reply is written, the composer offers Stop instead of Send.
    upstream.stream("Yes, still here.", delay=0.3)
    send(page, "Still there?")
    expect(send_button).to_be_disabled()
    expect(echo).to_have_count(1)
    expect(echo.locator(".message__role")).to_have_text("You")
    expect(echo.locator(BODY)).to_have_text("Still there?")
    expect(saved).to_have_count(2)
    held.release()
    expect(saved).to_have_count(4)
    expect(page.locator("#message-list [data-optimistic]")).to_have_count(0)
    expect(page.locator(WRITING)).to_have_count(1)
    expect(send_button).to_be_hidden()
    expect(stop_button).to_be_visible()
    expect(textarea).to_have_value("")

    expect_finished(saved.nth(3), "Yes, still here.")
    expect(stop_button).to_be_hidden()
    expect(send_button).to_be_visible()
    expect(send_button).to_be_enabled()


def test_it_shows_the_first_message_of_a_new_chat_before_the_upstream_answers(page, live_server, upstream, alice):
    sign_in(page, live_server, alice)
    expect(page.locator(COMPOSER)).to_be_focused()
    upstream.hang(1.5)  # no first token for a while

    send(page, "Are you there?")

    saved = page.locator(SAVED)
    expect(saved.nth(0).locator(BODY)).to_have_text("Are you there?")
    # Only the `done` event changes the reply's class: while it says pending, nothing has arrived.
    waiting = saved.nth(1)
    expect(waiting).to_have_class(re.compile(r"\bis-pending\b"))
    expect(waiting.locator(BODY)).to_have_text("")
    expect(waiting).to_contain_text("Writing…")
    expect(waiting.locator("[data-stop]")).to_be_visible()
    conversation = Conversation.objects.get(owner=alice)
    expect(page).to_have_url(conversation_url(live_server, conversation))
    expect(page.locator("#conversation-list [aria-current=page]")).to_have_text("Are you there?")

    expect_finished(saved.nth(1), "Echo: Are you there?")


def test_it_hides_the_empty_state_once_an_empty_conversation_has_messages(page, live_server, upstream, alice):
    conversation = Conversation.objects.create(owner=alice, model="mistralai/mistral-tiny")
    sign_in(page, live_server, alice)
    page.goto(conversation_url(live_server, conversation))
    empty = page.locator("#message-list .empty-state")
    expect(empty).to_be_visible()

    send(page, "First words")

    expect(page.locator(SAVED)).to_have_count(2)
    expect(empty).to_be_hidden()
    expect_finished(page.locator(SAVED).nth(1), "Echo: First words")
    expect(empty).to_be_hidden()
