"""The theme in Chromium: the person's choice is remembered, otherwise the system's is followed;
screenshots of both themes are saved for a person to look at."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    DESKTOP,
    MARKDOWN_REPLY,
    PHONE,
    conversation_url,
    sign_in,
    stored_conversation,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).parent.parent / "artifacts"


def test_it_remembers_the_chosen_theme_and_otherwise_follows_the_system(open_page, live_server, alice):
    page = open_page(color_scheme="light")
    sign_in(page, live_server, alice)
    html = page.locator("html")
    toggle = page.locator("[data-theme-toggle]")
    background = "() => getComputedStyle(document.body).backgroundColor"
    expect(html).to_have_attribute("data-theme", "light")
    expect(html).to_have_attribute("data-theme-choice", "system")
    expect(toggle).to_have_text("Theme: System")
    light_background = page.evaluate(background)

    toggle.click()
    expect(toggle).to_have_text("Theme: Light")
    toggle.click()

    expect(toggle).to_have_text("Theme: Dark")
    expect(html).to_have_attribute("data-theme", "dark")
    assert page.evaluate(background) != light_background

    page.reload()

    expect(html).to_have_attribute("data-theme", "dark")
    expect(html).to_have_attribute("data-theme-choice", "dark")
    expect(toggle).to_have_text("Theme: Dark")
    assert page.evaluate("localStorage.getItem('chatsite-theme')") == "dark"

    toggle.click()

    expect(toggle).to_have_text("Theme: System")
    expect(html).to_have_attribute("data-theme", "light")
    assert page.evaluate(background) == light_background
    page.emulate_media(color_scheme="dark")
    expect(html).to_have_attribute("data-theme", "dark")  # follows the system as it changes
    page.reload()
    expect(html).to_have_attribute("data-theme", "dark")
    expect(html).to_have_attribute("data-theme-choice", "system")
    page.emulate_media(color_scheme="light")
    expect(html).to_have_attribute("data-theme", "light")


def test_it_saves_screenshots_of_a_markdown_reply_in_both_themes_on_desktop_and_phone(open_page, live_server, alice):
    conversation = stored_conversation(alice, "Sorting in Python", [("How do I sort a list?", MARKDOWN_REPLY)])
    ARTIFACTS.mkdir(exist_ok=True)

    for device, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = open_page(viewport=viewport, is_mobile=device == "phone", has_touch=device == "phone")
        sign_in(page, live_server, alice)
        page.goto(conversation_url(live_server, conversation))
        expect(page.locator("[data-copy-code]")).to_be_visible()
        shots = {}
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            expect(page.locator("html")).to_have_attribute("data-theme", scheme)
            path = ARTIFACTS / f"chat-{device}-{scheme}.png"
            path.unlink(missing_ok=True)

            shots[scheme] = page.screenshot(path=path, animations="disabled")

            assert path.read_bytes() == shots[scheme]
            assert png_size(shots[scheme]) == (viewport["width"], viewport["height"])
        assert shots["light"] != shots["dark"]


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
