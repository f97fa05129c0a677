"""The chat on a phone in Chromium: the conversations wait behind a menu, and the composer and
the newest message stay in view."""

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    COMPOSER,
    PHONE,
    SAVED,
    conversation_url,
    expect_finished,
    send,
    sign_in,
    stored_conversation,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_fits_a_phone_with_the_conversations_behind_a_menu(open_page, live_server, upstream, alice):
    long_answer = (
        "A paragraph long enough to wrap over several lines on a phone, " * 4
        + "\n\n| a wide | table | with | many | columns | that | does | not | fit |\n"
        + "|---|---|---|---|---|---|---|---|---|\n| " + " | ".join(["somewhat-long-cell"] * 9) + " |\n\n"
        + "```python\nprint('a code line far longer than any phone is wide, which scrolls inside its block')\n```"
    )  # fmt: skip
    long_chat = stored_conversation(alice, "A long chat", [(f"Question {n}", long_answer) for n in range(1, 16)])
    page = open_page(viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in(page, live_server, alice)
    menu = page.locator("[data-menu]")
    sidebar = page.locator("#sidebar")
    composer = page.locator(COMPOSER)
    send_button = page.locator("#composer button[type=submit]")

    expect(menu).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(sidebar).to_be_hidden()
    expect(composer).to_be_in_viewport(ratio=1)
    expect(send_button).to_be_in_viewport(ratio=1)

    menu.tap()
    expect(sidebar).to_be_visible()
    expect(sidebar).to_be_in_viewport(ratio=1)
    expect(menu).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Escape")
    expect(sidebar).to_be_hidden()
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(menu).to_be_focused()

    menu.tap()
    expect(sidebar).to_be_visible()
    page.touchscreen.tap(370, 420)  # on the dimmed chat, beside the sidebar (at most 85% of the width)
    expect(sidebar).to_be_hidden()
    expect(menu).to_have_attribute("aria-expanded", "false")

    menu.tap()
    sidebar.get_by_role("link", name="A long chat").tap()
    expect(page).to_have_url(conversation_url(live_server, long_chat))
    expect(sidebar).to_be_hidden()
    expect(page.locator(SAVED)).to_have_count(30)
    expect(page.locator(SAVED).last).to_be_in_viewport()  # scrolled to the newest
    expect(composer).to_be_in_viewport(ratio=1)
    expect(send_button).to_be_in_viewport(ratio=1)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # wide tables and code scroll

    send(page, "One more question")

    expect_finished(page.locator(SAVED).last, "Echo: One more question")
    expect(page.locator(SAVED).last).to_be_in_viewport()
    expect(composer).to_be_in_viewport(ratio=1)
