"""Delete all my data with the keyboard alone: reach the form, be refused a wrong name, confirm, signed out."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from conversations.models import Conversation
from tests.browser.helpers import sign_in, stored_conversation
from tests.browser.test_accessibility import describe_violations, serious_axe_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_person_deletes_all_their_data_with_the_keyboard(page, live_server, alice, bob):
    stored_conversation(alice, "Alice's plans", [("What next?", "Rest.")])
    stored_conversation(bob, "Bob's plans", [("And me?", "Work.")])
    sign_in(page, live_server, alice)

    page.get_by_role("link", name="Your data").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Delete all my data")).to_be_visible()
    expect(page.get_by_role("link", name="Download JSON")).to_have_attribute("href", "/history/export.json")
    box = page.get_by_label("Type your username to confirm")
    for _ in range(10):  # Tab reaches the box past the page's links
        if box.evaluate("el => el === document.activeElement"):
            break
        page.keyboard.press("Tab")
    expect(box).to_be_focused()

    page.keyboard.type("alicex")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("nothing was deleted")
    box = page.get_by_label("Type your username to confirm")
    expect(box).to_be_focused()  # the cursor is back in the box to type it again
    assert Conversation.objects.filter(owner=alice).count() == 1

    page.keyboard.press("Control+A")
    page.keyboard.type("alice")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server.url}/accounts/deleted/")
    expect(page.get_by_role("status")).to_contain_text("1 conversation, 2 messages")
    assert not get_user_model().objects.filter(username="alice").exists()
    assert list(Conversation.objects.values_list("title", flat=True)) == ["Bob's plans"]
    page.goto("/")
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_data_page_and_its_refusal_have_no_serious_accessibility_violations(open_page, live_server, alice, scheme):
    page = open_page(color_scheme=scheme)
    sign_in(page, live_server, alice)
    page.goto("/accounts/data/")
    box = page.get_by_label("Type your username to confirm")
    box.fill("someone else")
    box.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("nothing was deleted")

    violations = serious_axe_violations(page)

    assert violations == [], describe_violations(violations)
