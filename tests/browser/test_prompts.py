"""The prompt library in Chromium: the composer's "/" picker opened, filtered, chosen, its variables
filled and the message sent with the keyboard alone; a prompt saved on the library page; and the
library, its edit and system-prompt pages, the open picker and its form axe-clean in both themes."""

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import Page, expect

from prompts.models import Prompt
from tests.browser.helpers import COMPOSER, SAVED, FullLoads, expect_finished, sign_in, stored_conversation
from tests.browser.test_accessibility import describe_violations, serious_axe_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PICKER = "#prompt-picker"
OPTIONS = "#prompt-picker-list [role=option]"


@pytest.fixture
def prompts(alice, bob):
    team = Group.objects.create(name="Team")
    alice.groups.add(team)
    bob.groups.add(team)
    made = {
        "translate": Prompt.objects.create(
            owner=alice, title="Translate", command="translate", body="Translate into {{language}}: {{text}}"
        ),
        "tldr": Prompt.objects.create(owner=alice, title="Too long", command="tldr", body="Summarise in one line."),
        "standup": Prompt.objects.create(
            owner=bob, title="Stand-up notes", command="standup", body="Notes: {{notes}}", audience="group", group=team
        ),
        "bobs": Prompt.objects.create(owner=bob, title="Bob's own", command="tabs", body="only bob"),
    }
    return made


def _composer_focused(page: Page):
    composer = page.locator(COMPOSER)
    expect(composer).to_be_focused()  # chat.js focuses it on arrival: no click needed
    return composer


def test_a_prompt_is_chosen_filled_and_sent_with_the_keyboard_alone(page, live_server, upstream, alice, prompts):
    upstream.reply("Bonjour à tous.")
    sign_in(page, live_server, alice)
    composer = _composer_focused(page)

    page.keyboard.type("/t")
    # Alice's own and her group's prompts; never Bob's personal /tabs.
    expect(page.locator(OPTIONS)).to_have_count(3)
    expect(page.locator(PICKER)).not_to_contain_text("/tabs")
    page.keyboard.type("r")
    expect(page.locator(OPTIONS)).to_have_text(["/translateTranslateOnly me"])
    expect(composer).to_have_attribute("aria-activedescendant", "prompt-option-0")
    expect(page.locator("#prompt-option-0")).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Enter")

    expect(page.locator(PICKER)).to_have_count(0)
    expect(page.get_by_role("textbox", name="language", exact=True)).to_be_focused()
    page.keyboard.type("French")
    page.keyboard.press("Tab")
    page.keyboard.type("<b>good</b> morning")
    page.keyboard.press("Enter")

    expect(composer).to_be_focused()
    expect(composer).to_have_value("Translate into French: <b>good</b> morning")
    page.keyboard.press("Enter")

    expect(page.locator(SAVED).first.locator(".message__body")).to_have_text(
        "Translate into French: <b>good</b> morning"
    )
    expect_finished(page.locator(SAVED).nth(1), "Bonjour à tous.")
    assert upstream.completion_requests[0].json["messages"][-1]["content"] == (
        "Translate into French: <b>good</b> morning"
    )


def test_the_picker_moves_with_the_arrows_takes_tab_and_closes_with_escape(page, live_server, upstream, alice, prompts):
    sign_in(page, live_server, alice)
    composer = _composer_focused(page)

    page.keyboard.type("/")
    expect(page.locator(OPTIONS)).to_have_count(3)
    page.keyboard.press("Escape")
    expect(page.locator(PICKER)).to_have_count(0)
    expect(composer).to_have_value("/")
    expect(composer).not_to_have_attribute("aria-activedescendant", "prompt-option-0")

    page.keyboard.press("Backspace")
    page.keyboard.type("/")  # the same text as when it closed, typed again: it opens again
    expect(page.locator(OPTIONS)).to_have_count(3)
    page.keyboard.type("t")
    expect(page.locator(OPTIONS)).to_have_count(3)
    # Her own first, by command, then her group's.
    expect(page.locator(OPTIONS).locator(".prompt-picker__command")).to_have_text(["/tldr", "/translate", "/standup"])
    page.keyboard.press("ArrowUp")  # from the first, up wraps round to the last
    expect(page.locator(OPTIONS).last).to_have_attribute("aria-selected", "true")
    expect(composer).to_have_attribute("aria-activedescendant", "prompt-option-2")
    page.keyboard.press("ArrowDown")  # and down wraps back to the first
    expect(composer).to_have_attribute("aria-activedescendant", "prompt-option-0")
    page.keyboard.press("Tab")

    expect(composer).to_have_value("Summarise in one line.")  # no variables: filled at once, not sent
    expect(composer).to_be_focused()
    assert upstream.completion_requests == []


def test_escape_in_the_variables_form_goes_back_to_the_composer(page, live_server, alice, prompts):
    sign_in(page, live_server, alice)
    composer = _composer_focused(page)
    page.keyboard.type("/stand")
    expect(page.locator(OPTIONS)).to_have_count(1)
    page.keyboard.press("Enter")
    expect(page.get_by_role("textbox", name="notes", exact=True)).to_be_focused()

    page.keyboard.press("Escape")

    expect(page.locator("#prompt-fill")).to_have_count(0)
    expect(composer).to_be_focused()
    expect(composer).to_have_value("/stand")
    expect(page.locator(PICKER)).to_have_count(0)


def test_a_prompt_saved_in_the_library_is_in_the_picker_at_once(page, live_server, alice):
    sign_in(page, live_server, alice)
    page.get_by_role("link", name="Prompts").click()
    full_loads = FullLoads(page)
    page.get_by_label("Title").fill("Explain")
    page.get_by_label("Command").fill("/Explain")
    page.get_by_label("Text", exact=True).fill("Explain {{topic}} to a child.")
    page.get_by_role("button", name="Save prompt").press("Enter")

    expect(page.get_by_role("status")).to_have_text("Saved /explain: type it at the start of a message.")
    expect(page.locator(".prompt-item code")).to_have_text(["/explain"])
    expect(page.get_by_label("Title")).to_have_value("")  # a fresh form for the next one
    assert full_loads.urls == []  # htmx swapped the library in place
    page.get_by_role("link", name="Back to the chat").click()
    _composer_focused(page)
    page.keyboard.type("/ex")
    expect(page.locator(OPTIONS)).to_have_text(["/explainExplainOnly me"])


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_library_its_pages_and_the_open_picker_have_no_serious_accessibility_violations(
    open_page, live_server, alice, prompts, scheme
):
    page = open_page(color_scheme=scheme)
    sign_in(page, live_server, alice)
    page.goto("/prompts/")
    expect(page.locator("html")).to_have_attribute("data-theme", scheme)
    expect(page.locator(".prompt-item")).to_have_count(3)  # two of hers, one of her group's

    library = serious_axe_violations(page)
    stored_conversation(alice, "Trip", [("Hello", "Hi!")])
    page.goto(f"/prompts/{prompts['translate'].pk}/system-prompt/")
    expect(page.get_by_label("Conversation")).to_have_value(str(alice.conversations.get().pk))
    system_prompt_page = serious_axe_violations(page)
    page.goto(f"/prompts/{prompts['translate'].pk}/edit/")
    expect(page.get_by_label("Title")).to_have_value("Translate")
    edit_page = serious_axe_violations(page)

    page.goto("/")
    _composer_focused(page)
    page.keyboard.type("/t")
    expect(page.locator(OPTIONS)).to_have_count(3)
    picker = serious_axe_violations(page)
    page.keyboard.type("ranslate")
    page.keyboard.press("Enter")
    expect(page.locator("#prompt-fill input")).to_have_count(2)
    variables_form = serious_axe_violations(page)

    assert library == [], describe_violations(library)
    assert system_prompt_page == [], describe_violations(system_prompt_page)
    assert edit_page == [], describe_violations(edit_page)
    assert picker == [], describe_violations(picker)
    assert variables_form == [], describe_violations(variables_form)
