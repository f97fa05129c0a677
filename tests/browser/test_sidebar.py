"""The sidebar in Chromium: more conversations load on scroll, and rename, delete and undo all
happen without a page load."""

import re

import pytest
from playwright.sync_api import expect

from conversations.models import Conversation
from tests.browser.helpers import FullLoads, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_loads_more_conversations_renames_and_undoes_a_delete_in_the_sidebar(page, live_server, alice):
    from django.utils import timezone

    now = timezone.now()
    Conversation.objects.bulk_create(
        [
            Conversation(owner=alice, model="m", title=f"Chat {n}", updated_at=now - timezone.timedelta(minutes=n))
            for n in range(55)
        ]
    )
    sign_in(page, live_server, alice)
    page.on("dialog", lambda dialog: dialog.accept())
    items = page.locator("#conversation-list li.conversation-item")
    full_loads = FullLoads(page)

    expect(items).to_have_count(50)
    page.locator("#sidebar-more").scroll_into_view_if_needed()
    expect(items).to_have_count(55)
    expect(items.last).to_have_text(re.compile("Chat 54"))

    page.get_by_role("button", name="Actions for Chat 1", exact=True).click()
    page.locator("#rename-" + str(Conversation.objects.get(title="Chat 1").pk)).fill("Renamed chat")
    page.get_by_role("button", name="Rename").click()
    expect(page.locator("#conversation-list")).to_contain_text("Renamed chat")

    page.get_by_role("button", name="Actions for Chat 2", exact=True).click()
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("link", name="Chat 2", exact=True)).to_have_count(0)
    page.get_by_role("button", name="Undo").click()
    expect(page.get_by_role("link", name="Chat 2", exact=True)).to_have_count(1)
    assert Conversation.objects.get(title="Chat 2").deleted_at is None
    assert full_loads.urls == [], "everything happened without a page load"
