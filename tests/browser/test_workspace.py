"""The workspace pieces in Chromium: feedback given from the keyboard and read in the admin, the
model changed from the header (and the next reply coming from it), the shortcut help, a model-made
title appearing without a reload, and axe-core on the header and the feedback in both themes."""

import re

import pytest
from playwright.sync_api import expect

from feedback.models import Feedback
from providers.models import ChatModel
from tests.browser.helpers import (
    COMPOSER,
    SAVED,
    FullLoads,
    conversation_url,
    expect_finished,
    send,
    sign_in,
    stored_conversation,
)
from tests.browser.test_accessibility import describe_violations, serious_axe_violations
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _offer_two_models() -> None:
    # The catalogue's first migration lists mistral-tiny; a test before this one may have emptied it.
    ChatModel.objects.update_or_create(model_id="mistralai/mistral-tiny", defaults={"enabled": True})
    ChatModel.objects.create(model_id="acme/small", display_name="Acme Small")


def _press_tab_until(page, locator, presses: int = 15) -> None:
    for _ in range(presses):
        page.keyboard.press("Tab")
        if locator.evaluate("element => element === document.activeElement"):
            return
    pytest.fail(f"{presses} presses of Tab never reached {locator}")


def test_feedback_is_given_from_the_keyboard_and_read_in_the_admin(open_page, live_server, alice, admin_user):
    conversation = stored_conversation(alice, "Sums", [("What is 2+2?", "5")])
    reply = conversation.current_message
    page = open_page()
    sign_in(page, live_server, alice)
    page.goto(conversation_url(live_server, conversation))
    down = page.locator(f"#feedback-{reply.pk}-down")
    expect(down).to_have_attribute("aria-pressed", "false")

    page.locator(f"#message-{reply.pk} [data-copy]").focus()
    _press_tab_until(page, down)
    page.keyboard.press("Enter")

    expect(down).to_have_attribute("aria-pressed", "true")
    expect(down).to_be_focused()  # the swap kept the focus where it was
    page.keyboard.press("Tab")  # the reason opened by itself: its summary, then the categories
    page.keyboard.press("Tab")
    expect(page.get_by_label("Not accurate")).to_be_focused()
    page.keyboard.press("Space")
    reason = page.locator(f"#feedback-{reply.pk}-reason")
    _press_tab_until(page, reason)
    page.keyboard.type("2+2 is 4")
    page.keyboard.press("Enter")

    expect(page.locator(f"#feedback-{reply.pk} summary")).to_have_text("Your reason")
    expect(down).to_have_attribute("aria-pressed", "true")
    feedback = Feedback.objects.get()
    assert (feedback.message_id, feedback.rating, feedback.categories, feedback.reason) == (
        reply.pk,
        "down",
        "wrong",
        "2+2 is 4",
    )

    admin = open_page()
    admin.goto("/admin/login/")
    admin.fill("#id_username", admin_user.username)
    admin.fill("#id_password", PASSWORD)
    admin.click("input[type=submit]")
    admin.goto("/admin/feedback/feedback/")
    expect(admin.locator("#feedback-per-model tbody tr")).to_have_text(re.compile(r"mistralai/mistral-tiny\s*0\s*1"))
    expect(admin.locator("#result_list")).to_contain_text("2+2 is 4")
    expect(admin.get_by_role("link", name="Export CSV (with the messages)")).to_be_visible()


def test_pressing_a_pressed_rating_again_removes_it(page, live_server, alice):
    conversation = stored_conversation(alice, "Greetings", [("Hi", "Hello!")])
    reply = conversation.current_message
    sign_in(page, live_server, alice)
    page.goto(conversation_url(live_server, conversation))
    up = page.locator(f"#feedback-{reply.pk}-up")

    up.click()
    expect(up).to_have_attribute("aria-pressed", "true")
    up.click()

    expect(up).to_have_attribute("aria-pressed", "false")
    assert not Feedback.objects.exists()


def test_the_model_is_changed_from_the_header_and_the_next_reply_uses_it(page, live_server, upstream, alice):
    _offer_two_models()
    conversation = stored_conversation(alice, "Models", [("Hi", "Hello!")])
    sign_in(page, live_server, alice)
    page.goto(conversation_url(live_server, conversation))
    picker = page.get_by_label("Model of this chat")
    expect(picker).to_have_value("mistralai/mistral-tiny")

    picker.focus()
    picker.select_option("acme/small")

    expect(page.locator("#model-picker [role=status]")).to_have_text("The next replies come from acme/small.")
    expect(page.locator("#id_settings-model")).to_have_value("acme/small")  # the settings panel agrees
    send(page, "And now?")
    expect_finished(page.locator(SAVED).nth(3), "Echo: And now?")
    assert upstream.completion_requests[-1].json["model"] == "acme/small"
    expect(page.locator(SAVED).nth(3).locator(".message__meta")).to_contain_text("acme/small")


def test_the_shortcut_help_opens_traps_the_focus_and_gives_it_back(page, live_server, alice):
    stored_conversation(alice, "Tips", [("Any tips?", "Use the keyboard.")])
    sign_in(page, live_server, alice)
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    composer = page.locator(COMPOSER)

    page.keyboard.press("Tab")  # out of the composer, where ? is just a character
    before = page.evaluate("document.activeElement.outerHTML")
    page.keyboard.press("?")

    expect(help_dialog).to_be_visible()
    expect(help_dialog).to_contain_text("Ctrl + Shift + O")
    close = help_dialog.get_by_role("button", name="Close")
    expect(close).to_be_focused()
    for _ in range(3):
        page.keyboard.press("Tab")
        expect(close).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(close).to_be_focused()
    page.keyboard.press("Escape")

    expect(help_dialog).to_be_hidden()
    assert page.evaluate("document.activeElement.outerHTML") == before

    composer.focus()
    composer.type("draft")
    page.keyboard.press("Control+/")
    expect(help_dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(help_dialog).to_be_hidden()
    expect(composer).to_be_focused()
    expect(composer).to_have_value("draft")  # Ctrl+/ typed nothing

    page.get_by_role("button", name="Shortcuts").click()
    help_dialog.get_by_text("Send the message").click()  # a click inside leaves it open
    expect(help_dialog).to_be_visible()
    page.mouse.click(5, 5)  # on the backdrop
    expect(help_dialog).to_be_hidden()


def test_a_model_made_title_appears_without_a_reload(page, live_server, upstream, alice, settings):
    settings.CHAT_AUTO_TITLE_MODEL = "title-model"
    upstream.reply("Rome rose and fell.")
    upstream.reply("Roman Empire history")
    sign_in(page, live_server, alice)
    full_loads = FullLoads(page)

    send(page, "Could you please tell me everything about the history of the Roman Empire?")

    expect_finished(page.locator(SAVED).nth(1), "Rome rose and fell.")
    expect(page.locator("#chat-title")).to_have_text("Roman Empire history")
    expect(page.locator("#conversation-list [aria-current=page]")).to_have_text("Roman Empire history")
    expect(page).to_have_title("Roman Empire history · chatsite")
    assert full_loads.urls == []
    assert upstream.completion_requests[-1].json["model"] == "title-model"


def test_message_times_show_on_hover_in_the_browsers_time_zone(open_page, live_server, alice):
    conversation = stored_conversation(alice, "Times", [("Hi", "Hello!")])
    page = open_page(timezone_id="Asia/Tokyo")
    sign_in(page, live_server, alice)
    page.goto(conversation_url(live_server, conversation))
    time = page.locator(f"#message-{conversation.current_message.pk} time")
    expected = page.evaluate(
        "iso => new Date(iso).toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'})",
        time.get_attribute("datetime"),
    )

    expect(time).to_have_text(expected)
    assert time.evaluate("t => getComputedStyle(t).opacity") == "0"
    page.locator(f"#message-{conversation.current_message.pk}").hover()
    expect(time).to_have_css("opacity", "1")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_header_and_the_feedback_have_no_serious_accessibility_violations(open_page, live_server, alice, scheme):
    _offer_two_models()
    conversation = stored_conversation(alice, "Reviewed", [("Hi", "Hello!"), ("And?", "More.")])
    conversation.system_prompt = "Answer <briefly> & kindly."
    conversation.save(update_fields=["system_prompt"])
    Feedback.objects.create(message=conversation.current_message, user=alice, rating="down", reason="Too short")
    page = open_page(color_scheme=scheme)
    sign_in(page, live_server, alice)
    page.goto(conversation_url(live_server, conversation))
    expect(page.locator("html")).to_have_attribute("data-theme", scheme)

    page.locator(".chat-settings--badge summary").click()
    expect(page.locator(".system-prompt__text")).to_have_text("Answer <briefly> & kindly.")
    page.locator(".feedback__details summary").click()  # one menu at a time: this closes the badge
    expect(page.get_by_label("Not accurate")).to_be_visible()
    page.locator(f"#message-{conversation.current_message.pk}").hover()
    violations = serious_axe_violations(page)
    assert violations == [], describe_violations(violations)

    page.keyboard.press("Escape")
    page.get_by_role("button", name="Shortcuts").click()
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    violations = serious_axe_violations(page)
    assert violations == [], describe_violations(violations)
