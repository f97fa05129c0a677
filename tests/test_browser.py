"""The chat in a real browser: headless Chromium (Debian's) against the live server and the fake upstream."""

import os
import re
import time
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
from tests.conftest import API_KEY, PASSWORD, settle  # noqa: E402

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
# The body of a reply still being written: it carries the address of its stream until `done`.
WRITING = "#message-list [data-stream-url]"
COMPOSER = "#composer textarea[name=content]"
COUNT_TO_TWELVE = "one two three four five six seven eight nine ten eleven twelve"


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
    textarea = page.locator(COMPOSER)
    textarea.fill(text)
    textarea.press("Enter")


def conversation_url(live_server, conversation: Conversation) -> str:
    return f"{live_server.url}/c/{conversation.pk}/"


def expect_finished(article, text: str, status: str = "complete") -> None:
    """The reply is final (its `done` event swapped in the server's HTML) and shows `text`."""
    expect(article).to_have_class(re.compile(rf"\bis-{status}\b"))
    expect(article.locator(BODY)).to_have_text(text)


class HeldSends:
    """Keeps the browser's sends (POSTs of the composer) waiting until `release()`.

    A send now returns at once, so a test that looks at the page while one is in flight
    holds it here instead of racing it.
    """

    def __init__(self, page: Page):
        self.routes = []
        self._page = page
        page.route(re.compile(r"/c/(\d+/messages/)?$"), self._hold)

    def _hold(self, route) -> None:
        if route.request.method == "POST":
            self.routes.append(route)
        else:
            route.continue_()

    def release(self) -> None:
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while not self.routes:
            assert time.monotonic() < deadline, "the browser never sent the message"
            self._page.wait_for_timeout(10)  # lets Playwright deliver the held request
        while self.routes:
            self.routes.pop(0).continue_()


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
    expect_finished(saved.nth(1), "Echo: What is htmx?")
    conversation = Conversation.objects.get(owner=alice)
    expect(page).to_have_url(conversation_url(live_server, conversation))
    expect(page.locator("#conversation-list [aria-current=page]")).to_have_text("What is htmx?")
    assert page.evaluate("window.__marker") == 1
    assert full_loads.urls == []

    send(page, "And Django?")

    expect(saved).to_have_count(4)
    expect(saved.nth(2).locator(BODY)).to_have_text("And Django?")
    expect_finished(saved.nth(3), "Echo: And Django?")
    expect(page.locator(COMPOSER)).to_have_value("")
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
    textarea = page.locator(COMPOSER)

    textarea.press_sequentially("First line")
    textarea.press("Shift+Enter")
    textarea.press_sequentially("second line")

    expect(textarea).to_have_value("First line\nsecond line")
    expect(page.locator("#message-list article.message")).to_have_count(0)
    assert upstream.completion_requests == []

    textarea.press("Enter")

    saved = page.locator(SAVED)
    expect(saved).to_have_count(2)
    expect_finished(saved.nth(1), "Echo: First line\nsecond line")
    assert saved.nth(0).locator(BODY).inner_text() == "First line\nsecond line"
    # Had Shift+Enter sent "First line" on its own, the upstream would have seen two requests.
    assert len(upstream.completion_requests) == 1
    assert upstream.completion_requests[0].json["messages"][-1]["content"] == "First line\nsecond line"
    assert Message.objects.get(role=Message.Role.USER).content == "First line\nsecond line"


def test_it_disables_send_and_shows_the_message_while_it_is_sent_then_offers_stop(page, live_server, upstream, alice):
    sign_in(page, live_server, alice)
    textarea = page.locator(COMPOSER)
    send_button = page.locator("#composer button[type=submit]")
    stop_button = page.locator("#composer [data-composer-stop]")
    saved = page.locator(SAVED)
    echo = page.locator("#message-list article.message--user[data-optimistic]")
    held = HeldSends(page)

    # The first message of a new chat: the whole pane is swapped when the server answers.
    send(page, "Are you there?")
    expect(send_button).to_be_disabled()
    expect(echo.locator(BODY)).to_have_text("Are you there?")
    expect(page.locator("#message-list article.message--assistant[data-optimistic]")).to_contain_text(
        "Waiting for the reply…"
    )
    held.release()
    expect(page.locator("#message-list [data-optimistic]")).to_have_count(0)
    expect(saved).to_have_count(2)
    expect_finished(saved.nth(1), "Echo: Are you there?")
    expect(send_button).to_be_enabled()
    expect(textarea).to_have_value("")

    # A follow-up: the turn is appended and the composer is reset out of band. While the
    # reply is written, the composer offers Stop instead of Send.
    upstream.stream("Yes, still here.", delay=0.3)
    send(page, "Still there?")
    expect(send_button).to_be_disabled()
    expect(echo).to_have_count(1)
    expect(echo.locator(".message__role")).to_have_text("You")
    expect(echo.locator(BODY)).to_have_text("Still there?")
    expect(saved).to_have_count(2)
    held.release()
    expect(saved).to_have_count(4)
    expect(page.locator("#message-list [data-optimistic]")).to_have_count(0)
    expect(page.locator(WRITING)).to_have_count(1)
    expect(send_button).to_be_hidden()
    expect(stop_button).to_be_visible()
    expect(textarea).to_have_value("")

    expect_finished(saved.nth(3), "Yes, still here.")
    expect(stop_button).to_be_hidden()
    expect(send_button).to_be_visible()
    expect(send_button).to_be_enabled()


def test_it_shows_the_first_message_of_a_new_chat_before_the_upstream_answers(page, live_server, upstream, alice):
    sign_in(page, live_server, alice)
    expect(page.locator(COMPOSER)).to_be_focused()
    upstream.hang(1.5)  # no first token for a while

    send(page, "Are you there?")

    saved = page.locator(SAVED)
    expect(saved.nth(0).locator(BODY)).to_have_text("Are you there?")
    # Only the `done` event changes the reply's class: while it says pending, nothing has arrived.
    waiting = saved.nth(1)
    expect(waiting).to_have_class(re.compile(r"\bis-pending\b"))
    expect(waiting.locator(BODY)).to_have_text("")
    expect(waiting).to_contain_text("Writing…")
    expect(waiting.locator("[data-stop]")).to_be_visible()
    conversation = Conversation.objects.get(owner=alice)
    expect(page).to_have_url(conversation_url(live_server, conversation))
    expect(page.locator("#conversation-list [aria-current=page]")).to_have_text("Are you there?")

    expect_finished(saved.nth(1), "Echo: Are you there?")


def test_it_keeps_the_message_when_upstream_fails_and_retries_in_place(page, live_server, upstream, alice):
    upstream.fail(500)
    sign_in(page, live_server, alice)
    full_loads = FullLoads(page)
    saved = page.locator(SAVED)

    send(page, "Hello?")

    expect(saved).to_have_count(2)
    expect(saved.nth(0).locator(BODY)).to_have_text("Hello?")
    failed = saved.nth(1)
    expect(failed).to_have_class(re.compile(r"\bis-error\b"))
    expect(failed.locator(".message__error")).to_contain_text("The AI/ML API is having trouble right now")
    failed_id = failed.get_attribute("id")
    page.evaluate("window.__marker = 1")

    failed.get_by_role("button", name="Retry").click()

    expect_finished(saved.nth(1), "Echo: Hello?")
    expect(page.locator("#message-list .message__error")).to_have_count(0)
    expect(saved).to_have_count(2)
    expect(saved.nth(0).locator(BODY)).to_have_text("Hello?")
    assert saved.nth(1).get_attribute("id") == failed_id
    expect(page.get_by_role("button", name="Retry")).to_have_count(0)
    expect(page.locator("#toast")).to_be_hidden()
    assert page.evaluate("window.__marker") == 1
    assert full_loads.urls == []
    assert len(upstream.completion_requests) == 2
    assert list(Message.objects.values_list("role", "status")) == [("user", "complete"), ("assistant", "complete")]


def test_it_renders_model_output_as_text_never_html(page, live_server, upstream, alice):
    payload = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    # The payload arrives in one piece, and the reply stays open a while after it.
    upstream.stream([payload, " (more ", "to come)"], delay=0.4)
    sign_in(page, live_server, alice)
    saved = page.locator(SAVED)

    send(page, "Show me <u>some</u> HTML")

    # While it is streamed: each piece is added as text.
    expect(page.locator(WRITING)).to_contain_text(payload)
    assert_shown_as_text(page)
    # The finished message, rendered by the server.
    expect_finished(saved.nth(1), payload + " (more to come)")
    expect(saved.nth(0).locator(BODY)).to_have_text("Show me <u>some</u> HTML")
    assert_shown_as_text(page)

    page.reload()

    expect(saved.nth(1).locator(BODY)).to_have_text(payload + " (more to come)")
    assert_shown_as_text(page)


def assert_shown_as_text(page: Page) -> None:
    expect(page.locator("#message-list article.message--assistant").locator(BODY)).to_contain_text("<img")
    expect(page.locator("#message-list img")).to_have_count(0)
    expect(page.locator("#message-list script")).to_have_count(0)
    expect(page.locator("#message-list u")).to_have_count(0)
    assert page.evaluate("typeof window.__xss") == "undefined"


def test_it_shows_a_form_error_by_the_composer_and_keeps_the_text(page, live_server, upstream, alice, settings):
    settings.CHAT_MAX_MESSAGE_CHARS = 50
    too_long = "Please summarise this paragraph for me in one line: " + "x" * 8
    assert len(too_long) == 60
    sign_in(page, live_server, alice)
    textarea = page.locator(COMPOSER)
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
    expect_finished(saved.nth(1), "Echo: Short enough.")
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
    expect_finished(page.locator(SAVED).nth(1), "Echo: First words")
    expect(empty).to_be_hidden()


def test_it_shows_the_reply_growing_while_it_is_written(page, live_server, upstream, alice):
    words = "one two three four five six"
    upstream.stream(words, delay=0.25)
    sign_in(page, live_server, alice)
    full_loads = FullLoads(page)
    reply = page.locator(SAVED).nth(1)

    send(page, "Count to six")

    # What the reply shows before it is final, sampled far more often than words arrive.
    seen = []
    deadline = time.monotonic() + 10
    while True:
        text, final = reply.evaluate("a => [a.querySelector('.message__body').textContent, !a.matches('[aria-busy]')]")
        if final:
            break
        if text not in seen:
            seen.append(text)
        assert time.monotonic() < deadline, f"the reply never finished; it showed {seen}"
        time.sleep(0.02)
    partial = [text for text in seen if text]
    assert len(partial) >= 3, f"the reply did not grow in steps: {seen}"
    assert all(words.startswith(text) for text in seen), seen  # in order, nothing repeated
    assert [len(text) for text in seen] == sorted(len(text) for text in seen)
    expect_finished(reply, words)
    assert full_loads.urls == []


@pytest.mark.parametrize("stop_with", ["reply's Stop button", "composer's Stop button", "Esc"])
def test_it_stops_a_reply_and_keeps_the_text_so_far(page, live_server, upstream, alice, stop_with):
    upstream.stream(COUNT_TO_TWELVE, delay=0.25)
    sign_in(page, live_server, alice)
    reply = page.locator(SAVED).nth(1)
    send(page, "Count to twelve")
    expect(page.locator(WRITING)).to_contain_text("one two")

    if stop_with == "reply's Stop button":
        reply.get_by_role("button", name="Stop").click()
    elif stop_with == "composer's Stop button":
        page.locator("#composer").get_by_role("button", name="Stop").click()
    else:
        page.keyboard.press("Escape")

    expect(reply).to_have_class(re.compile(r"\bis-stopped\b"))
    expect(reply.locator(".message__note")).to_have_text("Stopped.")
    # The stopped reply is rendered as Markdown: a paragraph, without the trailing space.
    shown = reply.locator(BODY).text_content().strip()
    assert shown.startswith("one two") and COUNT_TO_TWELVE.startswith(shown) and shown != COUNT_TO_TWELVE
    expect(page.locator("#composer button[type=submit]")).to_be_visible()
    settle()
    stored = Message.objects.get(role=Message.Role.ASSISTANT)
    assert (stored.status, stored.content.strip()) == (Message.Status.STOPPED, shown)

    page.reload()

    expect(reply).to_have_class(re.compile(r"\bis-stopped\b"))
    expect(reply.locator(".message__note")).to_have_text("Stopped.")
    assert reply.locator(BODY).text_content().strip() == shown
    assert len(upstream.completion_requests) == 1


def test_it_follows_a_reply_again_after_a_reload(page, live_server, upstream, alice):
    upstream.stream(COUNT_TO_TWELVE, delay=0.25)
    sign_in(page, live_server, alice)
    writing = page.locator(WRITING)
    send(page, "Count to twelve")
    expect(writing).to_contain_text("one two")

    page.reload()

    expect(writing).to_have_count(1)
    at_load = writing.text_content()
    assert COUNT_TO_TWELVE.startswith(at_load)
    # It grows again while still being written: the new page follows the same generation.
    grown = page.wait_for_function(
        """length => {
            const body = document.querySelector("#message-list [data-stream-url]");
            return body && body.textContent.length > length && body.textContent;
        }""",
        arg=len(at_load),
    ).json_value()
    assert COUNT_TO_TWELVE.startswith(grown), grown  # resumed where the page left off, nothing repeated
    expect_finished(page.locator(SAVED).nth(1), COUNT_TO_TWELVE)
    settle()
    assert len(upstream.completion_requests) == 1
    assert Message.objects.get(role=Message.Role.ASSISTANT).content == COUNT_TO_TWELVE


def test_it_regenerates_a_reply_and_switches_between_the_alternatives(page, live_server, upstream, alice):
    upstream.reply("First answer.")
    upstream.reply("Second answer.")
    sign_in(page, live_server, alice)
    full_loads = FullLoads(page)
    saved = page.locator(SAVED)
    reply = saved.nth(1)
    count = reply.locator("nav.siblings .siblings__count")
    send(page, "Tell me something")
    expect_finished(reply, "First answer.")
    expect(count).to_have_count(0)

    reply.get_by_role("button", name="Regenerate").click()

    expect_finished(reply, "Second answer.")
    expect(count).to_have_text("2/2")
    expect(saved).to_have_count(2)
    first, second = upstream.completion_requests
    assert second.json["messages"] == first.json["messages"] == [{"role": "user", "content": "Tell me something"}]

    reply.get_by_role("button", name="Previous alternative").click()

    expect(count).to_have_text("1/2")
    expect_finished(reply, "First answer.")
    expect(reply.get_by_role("button", name="Previous alternative")).to_be_disabled()
    expect(reply.get_by_role("button", name="Next alternative")).to_be_enabled()
    assert full_loads.urls == []

    page.reload()

    expect(count).to_have_text("1/2")
    expect(reply.locator(BODY)).to_have_text("First answer.")
    assert len(upstream.completion_requests) == 2


def test_it_sends_an_edited_copy_of_a_message_and_keeps_the_original(page, live_server, upstream, alice):
    sign_in(page, live_server, alice)
    full_loads = FullLoads(page)
    saved = page.locator(SAVED)
    question, reply = saved.nth(0), saved.nth(1)
    count = question.locator("nav.siblings .siblings__count")
    send(page, "What is the capital of Frnace?")
    expect_finished(reply, "Echo: What is the capital of Frnace?")

    question.get_by_text("Edit", exact=True).click()
    question.get_by_label("Edited message").fill("What is the capital of France?")
    question.get_by_role("button", name="Send edited copy").click()

    expect(question.locator(BODY)).to_have_text("What is the capital of France?")
    expect(count).to_have_text("2/2")
    expect_finished(reply, "Echo: What is the capital of France?")
    expect(saved).to_have_count(2)
    sent = upstream.completion_requests[1].json["messages"]
    assert sent == [{"role": "user", "content": "What is the capital of France?"}]
    assert "Frnace" not in str(sent)
    assert full_loads.urls == []

    question.get_by_role("button", name="Previous alternative").click()

    expect(count).to_have_text("1/2")
    expect(question.locator(BODY)).to_have_text("What is the capital of Frnace?")
    expect_finished(reply, "Echo: What is the capital of Frnace?")
    assert len(upstream.completion_requests) == 2
