"""The chat in a real browser: headless Chromium (Debian's) against the live server and the fake upstream."""

import os
import re
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "Chromium is not installed (/usr/bin/chromium): browser tests skipped; install with apt-get install chromium",
        allow_module_level=True,
    )

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from conversations.models import Conversation, Message  # noqa: E402
from tests.conftest import API_KEY, PASSWORD  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 5_000

# Messages the server rendered, not the optimistic echo chat.js shows while a request is in flight.
SAVED = "#message-list article.message:not([data-optimistic])"
BODY = ".message__body"


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API keeps an event loop running in the main thread, so Django would refuse
    # the ORM calls these tests make themselves (fixtures and checks of what was stored). The
    # switch is on for this module only.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def page(browser, live_server):
    """A fresh browser context per test; fails the test on a script error or a leaked API key."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    script_errors = []
    page.on("pageerror", lambda error: script_errors.append(error))
    yield page
    html = page.content()
    context.close()
    assert not script_errors, f"JavaScript errors on the page: {script_errors}"
    assert API_KEY not in html, "the upstream API key appeared in the page"


class FullLoads:
    """Records every document request of the main frame: htmx swaps and pushState make none."""

    def __init__(self, page: Page):
        self.urls: list[str] = []
        page.on("request", self._record)
        self._page = page

    def _record(self, request) -> None:
        if request.is_navigation_request() and request.frame == self._page.main_frame:
            self.urls.append(request.url)


def sign_in(page: Page, live_server, user) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/")


def send(page: Page, text: str) -> None:
    textarea = page.locator("#composer textarea[name=content]")
    textarea.fill(text)
    textarea.press("Enter")


def conversation_url(live_server, conversation: Conversation) -> str:
    return f"{live_server.url}/c/{conversation.pk}/"


def test_it_shows_the_reply_without_reloading_the_page(page, live_server, upstream, alice):
    sign_in(page, live_server, alice)
    full_loads = FullLoads(page)
    page.evaluate("window.__marker = 1")
    saved = page.locator(SAVED)

    send(page, "What is htmx?")

    expect(saved).to_have_count(2)
    expect(saved.nth(0)).to_have_class(re.compile(r"\bmessage--user\b"))
    expect(saved.nth(0).locator(BODY)).to_have_text("What is htmx?")
    expect(saved.nth(1)).to_have_class(re.compile(r"\bmessage--assistant\b"))
    expect(saved.nth(1).locator(BODY)).to_have_text("Echo: What is htmx?")
    conversation = Conversation.objects.get(owner=alice)
    expect(page).to_have_url(conversation_url(live_server, conversation))
    expect(page.locator("#conversation-list [aria-current=page]")).to_have_text("What is htmx?")
    assert page.evaluate("window.__marker") == 1
    assert full_loads.urls == []

    send(page, "And Django?")

    expect(saved).to_have_count(4)
    expect(saved.nth(2).locator(BODY)).to_have_text("And Django?")
    expect(saved.nth(3).locator(BODY)).to_have_text("Echo: And Django?")
    expect(page.locator("#composer textarea[name=content]")).to_have_value("")
    expect(page).to_have_url(conversation_url(live_server, conversation))
    assert page.evaluate("window.__marker") == 1
    assert full_loads.urls == []
    # The second request carried the first turn as history.
    second = upstream.completion_requests[1].json["messages"]
    assert [m["content"] for m in second] == ["What is htmx?", "Echo: What is htmx?", "And Django?"]

    page.reload()

    assert page.evaluate("typeof window.__marker") == "undefined"
    assert full_loads.urls == [conversation_url(live_server, conversation)]  # the detector sees a real load
    expect(saved.locator(BODY)).to_have_text(
        ["What is htmx?", "Echo: What is htmx?", "And Django?", "Echo: And Django?"]
    )
    assert len(upstream.completion_requests) == 2


def test_it_inserts_a_newline_on_shift_enter_and_sends_on_enter(page, live_server, upstream, alice):
    sign_in(page, live_server, alice)
    textarea = page.locator("#composer textarea[name=content]")

    textarea.press_sequentially("First line")
    textarea.press("Shift+Enter")
    textarea.press_sequentially("second line")

    expect(textarea).to_have_value("First line\nsecond line")
    expect(page.locator("#message-list article.message")).to_have_count(0)
    assert upstream.completion_requests == []

    textarea.press("Enter")

    saved = page.locator(SAVED)
    expect(saved).to_have_count(2)
    expect(saved.nth(1).locator(BODY)).to_have_text("Echo: First line\nsecond line")
    assert saved.nth(0).locator(BODY).inner_text() == "First line\nsecond line"
    # Had Shift+Enter sent "First line" on its own, the upstream would have seen two requests.
    assert len(upstream.completion_requests) == 1
    assert upstream.completion_requests[0].json["messages"][-1]["content"] == "First line\nsecond line"
    assert Message.objects.get(role=Message.Role.USER).content == "First line\nsecond line"


def test_it_disables_send_and_shows_the_message_while_the_reply_is_pending(page, live_server, upstream, alice):
    sign_in(page, live_server, alice)
    textarea = page.locator("#composer textarea[name=content]")
    button = page.locator("#composer button[type=submit]")
    saved = page.locator(SAVED)
    echo = page.locator("#message-list article.message--user[data-optimistic]")

    # The first message of a new chat: the whole pane is swapped when the reply arrives.
    upstream.hang(2)
    send(page, "Are you there?")
    expect(button).to_be_disabled()
    expect(saved).to_have_count(2)
    expect(saved.nth(1).locator(BODY)).to_have_text("Echo: Are you there?")
    expect(button).to_be_enabled()
    expect(textarea).to_have_value("")

    # A follow-up: the turn is appended and the composer is reset out of band.
    upstream.hang(2)
    send(page, "Still there?")
    expect(button).to_be_disabled()
    expect(echo).to_have_count(1)
    expect(echo.locator(".message__role")).to_have_text("You")
    expect(echo.locator(BODY)).to_have_text("Still there?")
    expect(saved).to_have_count(2)

    expect(saved).to_have_count(4)
    expect(saved.nth(3).locator(BODY)).to_have_text("Echo: Still there?")
    expect(page.locator("#message-list [data-optimistic]")).to_have_count(0)
    expect(button).to_be_enabled()
    expect(textarea).to_have_value("")


def test_it_shows_the_first_message_of_a_new_chat_while_the_reply_is_pending(page, live_server, upstream, alice):
    sign_in(page, live_server, alice)
    expect(page.locator("#composer textarea[name=content]")).to_be_focused()
    upstream.hang(2)

    send(page, "Are you there?")

    echo = page.locator("#message-list article.message--user[data-optimistic]")
    expect(echo.locator(BODY)).to_have_text("Are you there?", timeout=1_500)


def test_it_keeps_the_message_when_upstream_fails_and_retries_in_place(page, live_server, upstream, alice):
    upstream.fail(500)
    sign_in(page, live_server, alice)
    full_loads = FullLoads(page)
    saved = page.locator(SAVED)

    send(page, "Hello?")

    expect(saved).to_have_count(2)
    expect(saved.nth(0).locator(BODY)).to_have_text("Hello?")
    failed = saved.nth(1)
    expect(failed.locator(".message__error")).to_contain_text("The AI/ML API is having trouble right now")
    failed_id = failed.get_attribute("id")
    page.evaluate("window.__marker = 1")

    failed.get_by_role("button", name="Retry").click()

    expect(page.locator("#message-list .message__error")).to_have_count(0)
    expect(saved).to_have_count(2)
    expect(saved.nth(0).locator(BODY)).to_have_text("Hello?")
    expect(saved.nth(1).locator(BODY)).to_have_text("Echo: Hello?")
    assert saved.nth(1).get_attribute("id") == failed_id
    expect(page.get_by_role("button", name="Retry")).to_have_count(0)
    expect(page.locator("#toast")).to_be_hidden()
    assert page.evaluate("window.__marker") == 1
    assert full_loads.urls == []
    assert len(upstream.completion_requests) == 2
    assert list(Message.objects.values_list("role", "status")) == [("user", "complete"), ("assistant", "complete")]


def test_it_renders_model_output_as_text_never_html(page, live_server, upstream, alice):
    payload = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    upstream.reply(payload)
    sign_in(page, live_server, alice)
    saved = page.locator(SAVED)

    send(page, "Show me <u>some</u> HTML")

    expect(saved.nth(1).locator(BODY)).to_have_text(payload)
    expect(saved.nth(0).locator(BODY)).to_have_text("Show me <u>some</u> HTML")
    assert_shown_as_text(page)

    page.reload()

    expect(saved.nth(1).locator(BODY)).to_have_text(payload)
    assert_shown_as_text(page)


def assert_shown_as_text(page: Page) -> None:
    expect(page.locator(SAVED).nth(1).locator(BODY)).to_contain_text("<img")
    expect(page.locator("#message-list img")).to_have_count(0)
    expect(page.locator("#message-list script")).to_have_count(0)
    expect(page.locator("#message-list u")).to_have_count(0)
    assert page.evaluate("typeof window.__xss") == "undefined"


def test_it_shows_a_form_error_by_the_composer_and_keeps_the_text(page, live_server, upstream, alice, settings):
    settings.CHAT_MAX_MESSAGE_CHARS = 50
    too_long = "Please summarise this paragraph for me in one line: " + "x" * 8
    assert len(too_long) == 60
    sign_in(page, live_server, alice)
    textarea = page.locator("#composer textarea[name=content]")
    error = page.locator("#composer #composer-errors .form-error")
    saved = page.locator(SAVED)

    send(page, too_long)

    expect(error).to_have_text(
        "This message is too long: 60 characters, and the limit is 50. "
        "Nothing was sent; shorten it or split it into parts."
    )
    expect(textarea).to_have_value(too_long)
    expect(textarea).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#message-list article.message")).to_have_count(0)
    expect(page.locator("#message-list .empty-state")).to_be_visible()
    expect(page.locator("#toast")).to_be_hidden()
    expect(page).to_have_url(f"{live_server.url}/")
    assert upstream.completion_requests == []
    assert not Conversation.objects.exists()
    assert not Message.objects.exists()

    # The swapped-in composer still sends, and the same limit holds inside a conversation.
    send(page, "Short enough.")
    expect(saved).to_have_count(2)
    expect(error).to_have_count(0)
    send(page, too_long)
    expect(error).to_contain_text("This message is too long: 60 characters")
    expect(textarea).to_have_value(too_long)
    expect(saved).to_have_count(2)
    assert len(upstream.completion_requests) == 1
    assert Message.objects.count() == 2


def test_it_hides_the_empty_state_once_an_empty_conversation_has_messages(page, live_server, upstream, alice):
    conversation = Conversation.objects.create(owner=alice, model="mistralai/mistral-tiny")
    sign_in(page, live_server, alice)
    page.goto(conversation_url(live_server, conversation))
    empty = page.locator("#message-list .empty-state")
    expect(empty).to_be_visible()

    send(page, "First words")

    expect(page.locator(SAVED)).to_have_count(2)
    expect(empty).to_be_hidden()
