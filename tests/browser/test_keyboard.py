"""The chat with the keyboard alone in Chromium: Tab, Enter, Esc, "/" to search and a shortcut
for a new chat, each with a visible focus."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    COMPOSER,
    COUNT_TO_TWELVE,
    SAVED,
    WRITING,
    expect_finished,
    sign_in,
    stored_conversation,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_can_be_used_with_the_keyboard_alone(page, live_server, upstream, alice):
    stored_conversation(alice, "Django tips", [("Any Django tips?", "Use `select_related`.")])
    stored_conversation(alice, "Pasta recipes", [("A pasta recipe?", "Cacio e pepe.")])
    sign_in(page, live_server, alice)
    keyboard = page.keyboard
    composer = page.locator(COMPOSER)
    send_button = page.locator("#composer button[type=submit]")
    saved = page.locator(SAVED)

    # With nothing focused, Tab goes round the page to the composer and then Send, each visibly focused.
    page.evaluate("document.activeElement.blur()")
    row_border = "t => getComputedStyle(t.closest('.composer__row')).borderColor"
    unfocused_border = composer.evaluate(row_border)
    # The sidebar comes first (search, folders, the conversations, the account's links).
    for _ in range(40):
        keyboard.press("Tab")
        if composer.evaluate("t => t === document.activeElement"):
            break
    else:
        pytest.fail("40 presses of Tab never reached the composer")
    assert composer.evaluate(row_border) != unfocused_border  # the textarea's frame shows the focus
    keyboard.press("Tab")
    expect(send_button).to_be_focused()
    outline = send_button.evaluate(
        "b => b.matches(':focus-visible') && [getComputedStyle(b).outlineStyle, getComputedStyle(b).outlineWidth]"
    )
    assert outline == ["solid", "2px"]
    keyboard.press("Shift+Tab")
    expect(composer).to_be_focused()

    keyboard.type("Hello, keyboard")
    keyboard.press("Enter")

    expect_finished(saved.nth(1), "Echo: Hello, keyboard")
    expect(composer).to_be_focused()

    upstream.stream(COUNT_TO_TWELVE, delay=0.25)
    keyboard.type("Count to twelve")
    keyboard.press("Enter")
    expect(page.locator(WRITING)).to_contain_text("one two")
    keyboard.press("Escape")

    expect(saved.nth(3)).to_have_class(re.compile(r"\bis-stopped\b"))

    keyboard.press("Tab")  # out of the composer, where "/" is just a character
    keyboard.press("/")
    expect(page.locator("[data-search]")).to_be_focused()
    keyboard.type("pasta")
    # Full-text search: the title, and the message that says "pasta".
    expect(page.locator("#conversation-list .search-hit__title")).to_have_text(["Pasta recipes", "Pasta recipes"])

    keyboard.press("Control+Shift+O")

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator(".chat-header__title")).to_have_text("New chat")
    expect(composer).to_be_focused()
    expect(composer).to_have_value("")
