"""The chat's chrome in a real browser: menus (the Settings, and a new chat's ⋯, loaded when opened), the
sidebar's item menu, delete and share, phones, search."""

import re

import pytest
from playwright.sync_api import expect

from conversations.models import Conversation, ShareLink
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

SETTINGS = "details.chat-settings:has(> summary:text-is('Settings'))"
SHARE = "details.chat-settings:has(> summary:text-is('Share'))"
ACTIONS = "details#actions"
# The found message sits in the middle of the list (once any scrolling has finished).
CENTRED = """() => {
    const list = document.getElementById("message-list").getBoundingClientRect();
    const box = document.querySelector("#message-list .is-target").getBoundingClientRect();
    return Math.abs((box.top + box.bottom) / 2 - (list.top + list.bottom) / 2) < 40;
}"""


def open_chat(page, live_server, alice, title="Trip planning"):
    conversation = stored_conversation(alice, title, [("Where should we go?", "Lisbon is lovely in May.")])
    sign_in(page, live_server, alice)
    page.goto(conversation_url(live_server, conversation))
    page.wait_for_load_state("load")
    return conversation


def test_a_header_menu_closes_on_a_click_elsewhere(page, live_server, alice):
    open_chat(page, live_server, alice)
    settings = page.locator(SETTINGS)

    settings.locator("summary").click()
    expect(settings).to_have_attribute("open", "")
    page.locator("#message-list").click(position={"x": 20, "y": 200})

    expect(settings).not_to_have_attribute("open", "")


def test_a_header_menu_stays_open_while_it_is_used(page, live_server, alice):
    open_chat(page, live_server, alice)
    settings = page.locator(SETTINGS)

    settings.locator("summary").click()
    settings.locator("input:not([type=hidden]), select, textarea").first.click()

    expect(settings).to_have_attribute("open", "")


def test_escape_closes_a_menu_and_gives_the_focus_back_to_its_button(page, live_server, alice):
    open_chat(page, live_server, alice)
    settings = page.locator(SETTINGS)
    settings.locator("summary").click()
    settings.locator("input:not([type=hidden]), select, textarea").first.focus()

    page.keyboard.press("Escape")

    expect(settings).not_to_have_attribute("open", "")
    expect(settings.locator("summary")).to_be_focused()


def test_the_settings_load_when_opened_and_a_saved_change_is_applied(page, live_server, upstream, alice):
    conversation = open_chat(page, live_server, alice)
    settings = page.locator(SETTINGS)
    expect(settings.locator("textarea")).to_have_count(0)  # the page came without the form

    settings.locator("summary").click()
    settings.get_by_label("System prompt").fill("Answer in French.")
    settings.get_by_role("button", name="Save settings").click()

    expect(settings.get_by_role("status")).to_have_text("Saved.")
    expect(settings).not_to_have_attribute("aria-busy", "true")
    expect(page.locator("#system-prompt-badge summary")).to_have_text("System prompt")
    send(page, "And in June?")
    expect_finished(page.locator(SAVED).last, "Echo: And in June?")
    assert upstream.completion_requests[-1].json["messages"][0] == {"role": "system", "content": "Answer in French."}
    conversation.refresh_from_db()
    assert conversation.system_prompt == "Answer in French."


def test_a_new_chats_menu_loads_its_actions_when_opened_and_renames_it(page, live_server, upstream, alice):
    sign_in(page, live_server, alice)
    send(page, "Where should we go?")
    expect_finished(page.locator(SAVED).last, "Echo: Where should we go?")
    actions = page.locator(ACTIONS)

    actions.locator("summary").click()
    rename = actions.locator("input[data-rename]")
    expect(rename).to_have_value("Where should we go?")
    rename.fill("Trip ideas")
    rename.press("Enter")

    expect(page.locator("#conversation-list").get_by_role("link", name="Trip ideas")).to_be_visible()
    expect(page.locator("#chat-title")).to_have_text("Trip ideas")
    assert Conversation.objects.get(owner=alice).title == "Trip ideas"


def test_sending_a_message_closes_the_menus(page, live_server, upstream, alice):
    open_chat(page, live_server, alice)
    share = page.locator(SHARE)
    share.locator("summary").click()
    expect(share).to_have_attribute("open", "")

    send(page, "And in June?")

    expect(share).not_to_have_attribute("open", "")
    expect_finished(page.locator(SAVED).last, "Echo: And in June?")


def test_opening_one_menu_closes_the_others(page, live_server, alice):
    open_chat(page, live_server, alice)
    settings, actions = page.locator(SETTINGS), page.locator(ACTIONS)
    settings.locator("summary").click()

    actions.locator("summary").click()

    expect(actions).to_have_attribute("open", "")
    expect(settings).not_to_have_attribute("open", "")
    expect(page.locator("details[open]")).to_have_count(1)

    page.get_by_role("button", name="Actions for Trip planning").click()  # the sidebar's ⋯

    expect(page.locator("#conversation-list details.conversation-menu[open]")).to_have_count(1)
    expect(actions).not_to_have_attribute("open", "")


def test_the_sidebar_menu_closes_on_escape_and_a_click_elsewhere(page, live_server, alice):
    open_chat(page, live_server, alice)
    sidebar_menu = page.locator("#conversation-list details.conversation-menu")

    page.get_by_role("button", name="Actions for Trip planning").click()
    expect(sidebar_menu).to_have_attribute("open", "")
    page.keyboard.press("Escape")
    expect(sidebar_menu).not_to_have_attribute("open", "")
    expect(sidebar_menu.locator("summary")).to_be_focused()

    sidebar_menu.locator("summary").click()
    expect(sidebar_menu).to_have_attribute("open", "")
    page.locator("#message-list").click(position={"x": 20, "y": 200})
    expect(sidebar_menu).not_to_have_attribute("open", "")


def test_the_sidebar_menu_shows_export_on_one_line_and_the_whole_title_to_rename(page, live_server, alice):
    title = "Planning a week in Lisbon"
    open_chat(page, live_server, alice, title=title)

    page.get_by_role("button", name=f"Actions for {title}").click()
    panel = page.locator("#conversation-list .conversation-menu__panel")
    export = panel.locator(".conversation-menu__export")
    expect(export).to_be_visible()

    line_height = export.evaluate("p => parseFloat(getComputedStyle(p).lineHeight)")
    assert export.bounding_box()["height"] < 1.5 * line_height, "Export: Markdown · JSON wraps"
    rename = panel.locator("input[data-rename]")
    expect(rename).to_have_value(title)
    assert rename.evaluate("input => input.scrollWidth <= input.clientWidth"), "the rename box cuts the title"
    box, sidebar = panel.bounding_box(), page.locator("#sidebar").bounding_box()
    assert box["x"] >= sidebar["x"] and box["x"] + box["width"] <= sidebar["x"] + sidebar["width"]


def test_delete_asks_nothing_and_offers_undo(page, live_server, alice):
    open_chat(page, live_server, alice, title="Old chat")
    stored_conversation(alice, "Keep me", [("Hi", "Hello")])
    page.reload()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))

    page.get_by_role("button", name="Actions for Keep me").click()
    page.locator("#conversation-list").get_by_role("button", name="Delete").click()

    expect(page.get_by_role("button", name="Undo")).to_be_visible()
    assert dialogs == []
    assert Conversation.objects.get(title="Keep me").deleted_at is not None
    page.get_by_role("button", name="Undo").click()
    expect(page.get_by_role("link", name="Keep me", exact=True)).to_have_count(1)
    assert Conversation.objects.get(title="Keep me").deleted_at is None


def test_the_share_panel_copies_the_link(open_page, live_server, alice):
    page = open_page(permissions=["clipboard-read", "clipboard-write"])
    conversation = open_chat(page, live_server, alice)
    share = page.locator(SHARE)
    share.locator("summary").click()
    share.get_by_role("button", name="Create link").click()
    link = share.get_by_role("textbox", name="Share link")
    expect(link).to_have_value(re.compile(r"/s/"))
    token = ShareLink.objects.get(conversation=conversation).token

    share.get_by_role("button", name="Copy link").click()

    expect(share.get_by_role("button", name="Copy link")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == link.input_value()
    assert token in link.input_value()
    expect(share.get_by_role("button", name="Copy link")).to_have_text("Copy link", timeout=3_000)


def test_a_phone_has_touch_targets_of_44_px_and_new_chat_in_the_header(open_page, live_server, upstream, alice):
    page = open_page(viewport=PHONE, is_mobile=True, has_touch=True)
    open_chat(page, live_server, alice)
    targets = {
        "menu": page.locator("[data-menu]"),
        "new chat": page.locator(".chat-header").get_by_role("link", name="New chat"),
        "actions": page.locator(f"{ACTIONS} > summary"),
        "share": page.locator(f"{SHARE} > summary"),
        "settings": page.locator(f"{SETTINGS} > summary"),
        "send": page.locator("#composer button[type=submit]"),
    }
    for name, target in targets.items():
        expect(target).to_be_in_viewport(ratio=1)
        box = target.bounding_box()
        assert box["width"] >= 44 and box["height"] >= 44, f"{name}: {box['width']}×{box['height']} px"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    upstream.stream("one two three four five six seven eight nine ten", delay=0.3)
    send(page, "Count")
    stop = page.locator("#composer [data-composer-stop]")
    expect(stop).to_be_visible()
    box = stop.bounding_box()
    assert box["width"] >= 44 and box["height"] >= 44, f"stop: {box['width']}×{box['height']} px"
    stop.tap()
    expect(page.locator(SAVED).last).to_have_class(re.compile(r"\bis-stopped\b"))

    targets["new chat"].tap()
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator(".chat-header__title")).to_have_text("New chat")
    expect(page.locator(COMPOSER)).to_be_visible()


def test_a_search_result_centres_and_highlights_the_message_it_found(page, live_server, alice):
    turns = [(f"Question {n}", f"Answer {n}") for n in range(1, 31)]
    turns[4] = ("Tell me about the aardvark", "An aardvark eats ants.")
    stored_conversation(alice, "A long chat", turns)
    sign_in(page, live_server, alice)

    page.locator("[data-search]").fill("aardvark")
    hit = page.locator("#conversation-list a.search-hit").filter(has_text="Tell me about")
    hit.click()

    message = page.locator("#message-list article.message").filter(has_text="Tell me about the aardvark")
    expect(message).to_have_class(re.compile(r"\bis-target\b"))
    expect(message).to_be_in_viewport(ratio=1)
    other = page.locator("#message-list article.message").filter(has_text="Question 6")
    highlight = "m => [getComputedStyle(m).outlineStyle, getComputedStyle(m).backgroundColor]"
    assert message.evaluate(highlight) != other.evaluate(highlight), "the found message looks like any other"
    page.wait_for_function(CENTRED)


def test_a_link_to_a_message_centres_and_highlights_it_when_the_page_loads(page, live_server, alice):
    turns = [(f"Question {n}", f"Answer {n}") for n in range(1, 31)]
    conversation = stored_conversation(alice, "A long chat", turns)
    target = conversation.messages.get(content="Question 5")
    sign_in(page, live_server, alice)

    page.goto(f"{conversation_url(live_server, conversation)}?m={target.pk}#message-{target.pk}")

    message = page.locator(f"#message-{target.pk}")
    expect(message).to_have_class(re.compile(r"\bis-target\b"))
    page.wait_for_load_state("load")
    page.wait_for_function(CENTRED)
