"""A reply in Chromium while it is written: it grows word by word, Stop keeps the text so far,
and a reloaded page follows the same generation."""

import re
import time

import pytest
from playwright.sync_api import expect

from conversations.models import Message
from tests.browser.helpers import (
    BODY,
    COUNT_TO_TWELVE,
    SAVED,
    WRITING,
    FullLoads,
    expect_finished,
    send,
    sign_in,
)
from tests.conftest import settle

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_shows_the_reply_growing_while_it_is_written(page, live_server, upstream, alice):
    words = "one two three four five six"
    upstream.stream(words, delay=0.25)
    sign_in(page, live_server, alice)
    full_loads = FullLoads(page)
    reply = page.locator(SAVED).nth(1)

    send(page, "Count to six")

    # What the reply shows before it is final, sampled far more often than words arrive.
    seen = []
    deadline = time.monotonic() + 10
    while True:
        text, final = reply.evaluate("a => [a.querySelector('.message__body').textContent, !a.matches('[aria-busy]')]")
        if final:
            break
        if text not in seen:
            seen.append(text)
        assert time.monotonic() < deadline, f"the reply never finished; it showed {seen}"
        time.sleep(0.02)
    partial = [text for text in seen if text]
    assert len(partial) >= 3, f"the reply did not grow in steps: {seen}"
    assert all(words.startswith(text) for text in seen), seen  # in order, nothing repeated
    assert [len(text) for text in seen] == sorted(len(text) for text in seen)
    expect_finished(reply, words)
    assert full_loads.urls == []


@pytest.mark.parametrize("stop_with", ["reply's Stop button", "composer's Stop button", "Esc"])
def test_it_stops_a_reply_and_keeps_the_text_so_far(page, live_server, upstream, alice, stop_with):
    upstream.stream(COUNT_TO_TWELVE, delay=0.25)
    sign_in(page, live_server, alice)
    reply = page.locator(SAVED).nth(1)
    send(page, "Count to twelve")
    expect(page.locator(WRITING)).to_contain_text("one two")

    if stop_with == "reply's Stop button":
        reply.get_by_role("button", name="Stop").click()
    elif stop_with == "composer's Stop button":
        page.locator("#composer").get_by_role("button", name="Stop").click()
    else:
        page.keyboard.press("Escape")

    expect(reply).to_have_class(re.compile(r"\bis-stopped\b"))
    expect(reply.locator(".message__note")).to_have_text("Stopped.")
    # The stopped reply is rendered as Markdown: a paragraph, without the trailing space.
    shown = reply.locator(BODY).text_content().strip()
    assert shown.startswith("one two") and COUNT_TO_TWELVE.startswith(shown) and shown != COUNT_TO_TWELVE
    expect(page.locator("#composer button[type=submit]")).to_be_visible()
    settle()
    stored = Message.objects.get(role=Message.Role.ASSISTANT)
    assert (stored.status, stored.content.strip()) == (Message.Status.STOPPED, shown)

    page.reload()

    expect(reply).to_have_class(re.compile(r"\bis-stopped\b"))
    expect(reply.locator(".message__note")).to_have_text("Stopped.")
    assert reply.locator(BODY).text_content().strip() == shown
    assert len(upstream.completion_requests) == 1


def test_it_follows_a_reply_again_after_a_reload(page, live_server, upstream, alice):
    upstream.stream(COUNT_TO_TWELVE, delay=0.25)
    sign_in(page, live_server, alice)
    writing = page.locator(WRITING)
    send(page, "Count to twelve")
    expect(writing).to_contain_text("one two")

    page.reload()

    expect(writing).to_have_count(1)
    at_load = writing.text_content()
    assert COUNT_TO_TWELVE.startswith(at_load)
    # It grows again while still being written: the new page follows the same generation.
    grown = page.wait_for_function(
        """length => {
            const body = document.querySelector("#message-list [data-stream-url]");
            return body && body.textContent.length > length && body.textContent;
        }""",
        arg=len(at_load),
    ).json_value()
    assert COUNT_TO_TWELVE.startswith(grown), grown  # resumed where the page left off, nothing repeated
    expect_finished(page.locator(SAVED).nth(1), COUNT_TO_TWELVE)
    settle()
    assert len(upstream.completion_requests) == 1
    assert Message.objects.get(role=Message.Role.ASSISTANT).content == COUNT_TO_TWELVE
