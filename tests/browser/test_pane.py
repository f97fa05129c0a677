"""The chat pane in Chromium: drafts survive the actions that redraw the messages, refusals are
shown where the person looks, and the newest message is always one step away."""

import re
import time

import pytest
from django.core.cache import cache
from playwright.sync_api import Page, expect

from conversations.models import Message
from tests.browser.helpers import (
    BODY,
    COMPOSER,
    SAVED,
    conversation_url,
    expect_finished,
    send,
    sign_in,
    stored_conversation,
)
from tests.conftest import clear_cache
from usage import quotas

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DRAFT = "A half-written thought I have not sent"
LONG_TURNS = [
    (f"Question {number}?", f"Answer {number}.\n\n" + "A line of the answer.\n\n" * 3) for number in range(30)
]


def type_draft(page: Page) -> None:
    page.locator(COMPOSER).fill(DRAFT)


def scrolling_ended(page: Page) -> None:
    """Wait until the message list has not moved for ten frames (a smooth scroll takes a few hundred ms)."""
    page.locator("#message-list").evaluate(
        """list => new Promise(resolve => {
            let last = list.scrollTop, still = 0;
            const frame = () => {
                still = list.scrollTop === last ? still + 1 : 0;
                last = list.scrollTop;
                if (still >= 10) resolve(); else requestAnimationFrame(frame);
            };
            requestAnimationFrame(frame);
        })"""
    )


def expect_at_bottom(page: Page) -> None:
    page.wait_for_function(
        "() => { const l = document.getElementById('message-list'); "
        "return l.scrollHeight - l.scrollTop - l.clientHeight < 2; }"
    )


# --- Item 11: a draft in the composer survives Regenerate, the arrows, Retry and Edit ------------------


def test_regenerate_keeps_the_draft_in_the_composer(page, live_server, upstream, alice):
    upstream.reply("First answer.")
    upstream.reply("Second answer.")
    sign_in(page, live_server, alice)
    reply = page.locator(SAVED).nth(1)
    send(page, "Tell me something")
    expect_finished(reply, "First answer.")
    type_draft(page)

    reply.get_by_role("button", name="Regenerate").click()

    expect(reply.locator("nav.siblings .siblings__count")).to_have_text("2/2")
    expect_finished(reply, "Second answer.")
    expect(page.locator(COMPOSER)).to_have_value(DRAFT)


def test_the_alternative_arrows_keep_the_draft_and_a_send_continues_the_branch_shown(
    page, live_server, upstream, alice
):
    upstream.reply("First answer.")
    upstream.reply("Second answer.")
    sign_in(page, live_server, alice)
    saved = page.locator(SAVED)
    reply = saved.nth(1)
    count = reply.locator("nav.siblings .siblings__count")
    send(page, "Tell me something")
    expect_finished(reply, "First answer.")
    reply.get_by_role("button", name="Regenerate").click()
    expect_finished(reply, "Second answer.")
    type_draft(page)

    reply.get_by_role("button", name="Previous alternative").click()

    expect(count).to_have_text("1/2")
    expect(reply.locator(BODY)).to_have_text("First answer.")
    expect(page.locator(COMPOSER)).to_have_value(DRAFT)

    page.locator(COMPOSER).press("Enter")  # the draft answers the alternative now shown

    expect_finished(saved.nth(3), f"Echo: {DRAFT}")
    sent = [m["content"] for m in upstream.completion_requests[-1].json["messages"]]
    assert sent == ["Tell me something", "First answer.", DRAFT]


def test_retry_keeps_the_draft_in_the_composer(page, live_server, upstream, alice):
    upstream.fail(500)
    sign_in(page, live_server, alice)
    failed = page.locator(SAVED).nth(1)
    send(page, "Hello?")
    expect(failed).to_have_class(re.compile(r"\bis-error\b"))
    type_draft(page)

    failed.get_by_role("button", name="Retry").click()

    expect_finished(failed, "Echo: Hello?")
    expect(page.locator(COMPOSER)).to_have_value(DRAFT)


def test_edit_keeps_the_draft_in_the_composer(page, live_server, upstream, alice):
    sign_in(page, live_server, alice)
    question, reply = page.locator(SAVED).nth(0), page.locator(SAVED).nth(1)
    send(page, "What is the capital of Frnace?")
    expect_finished(reply, "Echo: What is the capital of Frnace?")
    type_draft(page)

    question.get_by_text("Edit", exact=True).click()
    question.get_by_label("Edited message").fill("What is the capital of France?")
    question.get_by_role("button", name="Send edited copy").click()

    expect(question.locator("nav.siblings .siblings__count")).to_have_text("2/2")
    expect_finished(reply, "Echo: What is the capital of France?")
    expect(page.locator(COMPOSER)).to_have_value(DRAFT)


# --- Item 12: a refused Regenerate is shown where the person is looking -------------------------


def test_a_regenerate_refused_by_the_rate_limit_is_shown_in_view(
    page, live_server, upstream, alice, settings, monkeypatch
):
    clear_cache()
    monkeypatch.setattr(quotas, "_clock", lambda: 1_800_000_000.0)  # one minute for the whole test
    settings.CHAT_RATE_LIMIT_PER_MINUTE = 1
    conversation = stored_conversation(alice, "Long chat", LONG_TURNS)
    quotas.check_rate(alice.pk)  # this minute's one message is used up
    stored = Message.objects.count()
    sign_in(page, live_server, alice)
    page.goto(conversation_url(live_server, conversation))
    expect_at_bottom(page)
    type_draft(page)

    page.locator(SAVED).last.get_by_role("button", name="Regenerate").click()

    refusal = page.get_by_role("alert").filter(has_text="You are sending messages faster than this site allows")
    expect(refusal).to_be_visible()
    scrolling_ended(page)
    expect(refusal).to_be_in_viewport()
    expect(page.locator(COMPOSER)).to_have_value(DRAFT)
    assert Message.objects.count() == stored
    assert upstream.completion_requests == []


def test_an_edit_refused_by_the_rate_limit_is_shown_in_view_and_keeps_the_edited_text(
    page, live_server, upstream, alice, settings, monkeypatch
):
    clear_cache()
    monkeypatch.setattr(quotas, "_clock", lambda: 1_800_000_000.0)
    settings.CHAT_RATE_LIMIT_PER_MINUTE = 1
    conversation = stored_conversation(alice, "Long chat", LONG_TURNS)
    quotas.check_rate(alice.pk)
    sign_in(page, live_server, alice)
    page.goto(conversation_url(live_server, conversation))
    expect_at_bottom(page)
    question = page.locator(SAVED).nth(-2)

    question.get_by_text("Edit", exact=True).click()
    question.get_by_label("Edited message").fill("An edited question")
    question.get_by_role("button", name="Send edited copy").click()

    refusal = page.get_by_role("alert").filter(has_text="You are sending messages faster than this site allows")
    expect(refusal).to_be_visible()
    scrolling_ended(page)
    expect(refusal).to_be_in_viewport()
    expect(question.get_by_label("Edited message")).to_have_value("An edited question")
    assert upstream.completion_requests == []


# --- Item 17: the way back to the newest message --------------------------------------------------


def test_a_scroll_to_newest_button_appears_when_scrolled_up_and_takes_the_keyboard_back_down(page, live_server, alice):
    conversation = stored_conversation(alice, "Long chat", LONG_TURNS)
    sign_in(page, live_server, alice)
    page.goto(conversation_url(live_server, conversation))
    expect_at_bottom(page)
    button = page.get_by_role("button", name="Scroll to the newest message")
    expect(button).to_be_hidden()

    page.locator("#message-list").evaluate("list => { list.style.scrollBehavior = 'auto'; list.scrollTop = 0; }")

    expect(button).to_be_visible()
    expect(button).to_be_in_viewport()
    button.focus()
    page.keyboard.press("Enter")

    expect_at_bottom(page)
    expect(page.locator(SAVED).last).to_be_in_viewport()
    expect(button).to_be_hidden()
    expect(page.locator(COMPOSER)).to_be_focused()  # focus does not fall back to the page


def test_the_scroll_to_newest_button_is_reached_with_tab_from_the_messages(page, live_server, alice):
    conversation = stored_conversation(alice, "Long chat", LONG_TURNS)
    sign_in(page, live_server, alice)
    page.goto(conversation_url(live_server, conversation))
    expect_at_bottom(page)
    page.locator("#message-list").evaluate("list => { list.style.scrollBehavior = 'auto'; list.scrollTop = 0; }")
    button = page.get_by_role("button", name="Scroll to the newest message")
    expect(button).to_be_visible()
    page.locator(COMPOSER).focus()

    page.keyboard.press("Shift+Tab")

    expect(button).to_be_focused()


def test_a_reply_cut_mid_stream_brings_its_error_and_retry_into_view(page, live_server, upstream, alice):
    conversation = stored_conversation(alice, "Long chat", LONG_TURNS)
    # Text arrives faster than a smooth scroll moves: each piece is a paragraph of its own.
    upstream.stream([f"Part {number} of the story.\n\n" for number in range(40)], delay=0.02, end="drop")
    sign_in(page, live_server, alice)
    page.goto(conversation_url(live_server, conversation))
    expect_at_bottom(page)

    send(page, "Tell me a long story")

    failed = page.locator(SAVED).last
    expect(failed).to_have_class(re.compile(r"\bis-(interrupted|error)\b"))
    scrolling_ended(page)
    expect(failed.locator(".message__error")).to_be_in_viewport()
    expect(failed.get_by_role("button", name="Retry")).to_be_in_viewport()


# --- A stream refused for too many open tabs says why (item 5's 429, as the person sees it) ---------


def test_a_tab_past_the_cap_of_open_streams_says_why(open_page, live_server, alice, settings):
    settings.CHAT_STREAMS_PER_REPLY = 1
    clear_cache()
    conversation = stored_conversation(alice, "Still writing", [("Go on", "Done.")])
    reply = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        parent=conversation.current_message.parent,
        status=Message.Status.STREAMING,
        content="Once upon",
    )
    conversation.current_message = reply
    conversation.save(update_fields=["current_message"])
    first, second = open_page(), open_page()
    try:
        sign_in(first, live_server, alice)
        first.goto(conversation_url(live_server, conversation))
        # The first tab's stream holds the reply's one slot (the cache is this process's own).
        deadline = time.monotonic() + 10
        while cache.get(f"streams:reply:{reply.pk}:0") is None:
            assert time.monotonic() < deadline, "the first tab never opened its stream"
            time.sleep(0.05)
        sign_in(second, live_server, alice)

        second.goto(conversation_url(live_server, conversation))

        expect(second.locator("#toast")).to_contain_text("This reply is open in 1 tab already")
        expect(first.locator("#toast")).to_be_hidden()
    finally:
        Message.objects.filter(pk=reply.pk).update(status=Message.Status.COMPLETE)  # the streams end
