"""Folders and temporary chats in Chromium: a folder made and a chat moved into it with the keyboard
(and by dragging), its collapsed state kept through a reload, no serious axe violation, and a
temporary chat that survives a reload but is gone once left."""

import re

import pytest
from playwright.sync_api import expect

from conversations.models import Conversation, Folder
from tests.browser.helpers import (
    SAVED,
    conversation_url,
    expect_finished,
    expect_htmx_idle,
    send,
    sign_in,
    stored_conversation,
)
from tests.browser.test_accessibility import serious_axe_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_folder_is_made_and_a_chat_moved_into_it_with_the_keyboard(page, live_server, alice):
    chat = stored_conversation(alice, "Quarterly plan", [("Plan Q3", "Here is a plan.")])
    stored_conversation(alice, "Holiday ideas", [("Where to?", "Lisbon.")])
    sign_in(page, live_server, alice)

    page.get_by_label("New folder name").fill("Work")
    page.get_by_label("New folder name").press("Enter")
    folder = page.locator("details.folder")
    expect(folder).to_contain_text("Work")
    expect_htmx_idle(page)  # the new sidebar may still be settling (the test failed one run in two)

    menu = page.get_by_role("button", name="Actions for Quarterly plan", exact=True)
    menu.focus()
    page.keyboard.press("Enter")
    choice = page.locator(f"#move-{chat.pk}")
    choice.focus()
    choice.select_option(label="Work")
    page.keyboard.press("Tab")  # to "Move to folder"
    expect(page.get_by_role("button", name="Move to folder")).to_be_focused()
    page.keyboard.press("Enter")

    expect(folder.get_by_role("link", name="Quarterly plan")).to_be_visible()
    expect(page.locator("[data-drop-folder=''] >> text=Quarterly plan")).to_have_count(0)
    assert Conversation.objects.get(pk=chat.pk).folder.name == "Work"
    assert serious_axe_violations(page) == []


def test_a_folders_collapsed_state_is_kept_after_a_reload(page, live_server, alice):
    folder = Folder.objects.create(owner=alice, name="Work")
    chat = stored_conversation(alice, "Quarterly plan", [("Plan Q3", "Here is a plan.")])
    chat.folder = folder
    chat.save()
    saves = []
    page.on("request", lambda request: saves.append(request.url) if "/collapse/" in request.url else None)
    sign_in(page, live_server, alice)
    filed = page.locator("details.folder").get_by_role("link", name="Quarterly plan")
    expect(filed).to_be_visible()
    page.get_by_label("New folder name").fill("Home")
    page.get_by_label("New folder name").press("Enter")  # the sidebar is swapped in again
    expect(page.locator("details.folder")).to_have_count(2)
    page.wait_for_load_state("networkidle")
    assert saves == [], "showing a folder as it was stored saves nothing"

    with page.expect_response(re.compile(r"/folders/\d+/collapse/$")) as saved:
        page.locator(f"#folder-{folder.pk} > summary").click()
    assert saved.value.status == 204
    expect(filed).to_be_hidden()
    page.reload()

    expect(page.locator(f"#folder-{folder.pk}")).not_to_have_attribute("open", "")
    expect(filed).to_be_hidden()
    folder.refresh_from_db()
    assert folder.collapsed

    with page.expect_response(re.compile(r"/folders/\d+/collapse/$")):
        page.locator(f"#folder-{folder.pk} > summary").click()
    page.reload()
    expect(filed).to_be_visible()


def test_a_chat_dragged_onto_a_folder_is_filed_in_it(page, live_server, alice):
    folder = Folder.objects.create(owner=alice, name="Work")
    chat = stored_conversation(alice, "Quarterly plan", [("Plan Q3", "Here is a plan.")])
    sign_in(page, live_server, alice)

    page.locator(f"#conversation-{chat.pk} > a").drag_to(page.locator("details.folder > summary"))

    expect(page.locator("details.folder").get_by_role("link", name="Quarterly plan")).to_be_visible()
    chat.refresh_from_db()
    assert chat.folder == folder


def test_a_temporary_chat_survives_a_reload_and_is_gone_after_leaving(page, live_server, alice, upstream):
    sign_in(page, live_server, alice)

    page.get_by_label("Temporary chat").check()
    send(page, "A secret draft")
    expect_finished(page.locator(SAVED).last, "Echo: A secret draft")
    chat = Conversation.objects.get(owner=alice)
    assert chat.temporary
    expect(page.locator("#temporary-badge")).to_be_visible()
    expect(page.locator("#conversation-list")).not_to_contain_text("A secret draft")

    page.reload()
    expect(page.locator("#temporary-badge")).to_be_visible()
    expect(page.locator(SAVED).last).to_contain_text("Echo: A secret draft")

    page.locator("[data-new-chat]").click()
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator("#chat-title")).to_have_text("New chat")
    assert not Conversation.objects.filter(pk=chat.pk).exists()
    response = page.goto(conversation_url(live_server, chat))
    assert response.status == 404
