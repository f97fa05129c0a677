"""Regenerate and Edit in Chromium: each makes an alternative, the arrows switch between them,
and the original is kept."""

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import BODY, SAVED, FullLoads, expect_finished, send, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_regenerates_a_reply_and_switches_between_the_alternatives(page, live_server, upstream, alice):
    upstream.reply("First answer.")
    upstream.reply("Second answer.")
    sign_in(page, live_server, alice)
    full_loads = FullLoads(page)
    saved = page.locator(SAVED)
    reply = saved.nth(1)
    count = reply.locator("nav.siblings .siblings__count")
    send(page, "Tell me something")
    expect_finished(reply, "First answer.")
    expect(count).to_have_count(0)

    reply.get_by_role("button", name="Regenerate").click()

    expect_finished(reply, "Second answer.")
    expect(count).to_have_text("2/2")
    expect(saved).to_have_count(2)
    first, second = upstream.completion_requests
    assert second.json["messages"] == first.json["messages"] == [{"role": "user", "content": "Tell me something"}]

    reply.get_by_role("button", name="Previous alternative").click()

    expect(count).to_have_text("1/2")
    expect_finished(reply, "First answer.")
    expect(reply.get_by_role("button", name="Previous alternative")).to_be_disabled()
    expect(reply.get_by_role("button", name="Next alternative")).to_be_enabled()
    assert full_loads.urls == []

    page.reload()

    expect(count).to_have_text("1/2")
    expect(reply.locator(BODY)).to_have_text("First answer.")
    assert len(upstream.completion_requests) == 2


def test_it_sends_an_edited_copy_of_a_message_and_keeps_the_original(page, live_server, upstream, alice):
    sign_in(page, live_server, alice)
    full_loads = FullLoads(page)
    saved = page.locator(SAVED)
    question, reply = saved.nth(0), saved.nth(1)
    count = question.locator("nav.siblings .siblings__count")
    send(page, "What is the capital of Frnace?")
    expect_finished(reply, "Echo: What is the capital of Frnace?")

    question.get_by_text("Edit", exact=True).click()
    question.get_by_label("Edited message").fill("What is the capital of France?")
    question.get_by_role("button", name="Send edited copy").click()

    expect(question.locator(BODY)).to_have_text("What is the capital of France?")
    expect(count).to_have_text("2/2")
    expect_finished(reply, "Echo: What is the capital of France?")
    expect(saved).to_have_count(2)
    sent = upstream.completion_requests[1].json["messages"]
    assert sent == [{"role": "user", "content": "What is the capital of France?"}]
    assert "Frnace" not in str(sent)
    assert full_loads.urls == []

    question.get_by_role("button", name="Previous alternative").click()

    expect(count).to_have_text("1/2")
    expect(question.locator(BODY)).to_have_text("What is the capital of Frnace?")
    expect_finished(reply, "Echo: What is the capital of Frnace?")
    assert len(upstream.completion_requests) == 2
