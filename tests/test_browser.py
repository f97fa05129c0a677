"""The chat in a real browser: headless Chromium (Debian's) against the live server and the fake upstream."""

import os
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "Chromium is not installed (/usr/bin/chromium): browser tests skipped; install with apt-get install chromium",
        allow_module_level=True,
    )

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from conversations.models import Conversation, Message  # noqa: E402
from tests.conftest import API_KEY, PASSWORD, clear_cache, settle  # noqa: E402
from tests.xss_corpus import PAYLOADS  # noqa: E402

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
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

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
def open_page(browser, live_server):
    """Opens a page in a fresh browser context (`browser.new_context` options: viewport, color_scheme...).

    Each page fails the test on a script error or a leaked API key.
    """
    opened = []

    def open_page(**options) -> Page:
        context = browser.new_context(base_url=live_server.url, **{"viewport": DESKTOP, **options})
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        script_errors, blocked = [], []
        page.on("pageerror", lambda error: script_errors.append(error))
        # Chromium reports what the Content-Security-Policy refused on the console.
        page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
        opened.append((page, script_errors, blocked))
        return page

    yield open_page
    for page, script_errors, blocked in opened:
        html = page.content()
        page.context.close()
        assert not script_errors, f"JavaScript errors on the page: {script_errors}"
        assert not blocked, f"the Content-Security-Policy blocked something: {blocked}"
        assert API_KEY not in html, "the upstream API key appeared in the page"


@pytest.fixture
def page(open_page):
    """A desktop-sized page in a fresh browser context."""
    return open_page()


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
    # The URL changes before the page's deferred scripts have run: an Enter pressed before
    # chat.js listens adds a line instead of sending (seen once in CI on a loaded machine).
    page.wait_for_load_state("load")


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
    expect(failed.locator(".message__error")).to_contain_text("is having trouble right now")
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


def test_a_request_over_the_size_limit_says_so_and_keeps_the_text(page, live_server, upstream, alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    huge = "word " * 600
    sign_in(page, live_server, alice)

    send(page, huge)

    expect(page.locator("#toast")).to_have_text("The request is too large. Shorten the message and send it again.")
    expect(page.locator(COMPOSER)).to_have_value(huge)
    expect(page.locator(SAVED)).to_have_count(0)
    assert upstream.completion_requests == []
    assert not Message.objects.exists()


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


def test_it_shows_the_rate_limit_by_the_composer_and_keeps_the_text(
    page, live_server, upstream, alice, settings, monkeypatch
):
    from usage import quotas

    clear_cache()
    monkeypatch.setattr(quotas, "_clock", lambda: 1_800_000_000.0)  # one minute for the whole test
    settings.CHAT_RATE_LIMIT_PER_MINUTE = 1
    sign_in(page, live_server, alice)
    saved = page.locator(SAVED)
    send(page, "First message.")
    expect_finished(saved.nth(1), "Echo: First message.")

    send(page, "Second message, too soon.")

    expect(page.locator("#composer #composer-errors .form-error")).to_contain_text(
        "You are sending messages faster than this site allows (1 a minute)"
    )
    expect(page.locator(COMPOSER)).to_have_value("Second message, too soon.")
    expect(saved).to_have_count(2)
    expect(page.locator("#toast")).to_be_hidden()
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


# --- Hostile text, Markdown, phones, keyboard, themes, accessibility ---------------------------

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(__file__).parent / "artifacts"
MARKDOWN_REPLY = '''## Sorting in Python

Use **`sorted()`** for a new list, or `list.sort()` to sort in place:

| Function | Returns | Stable |
|:---------|:--------|-------:|
| `sorted(items)` | a new list | yes |
| `items.sort()` | `None` | yes |

```python
def by_length(words: list[str]) -> list[str]:
    """Shortest first; equal lengths keep their order."""
    return sorted(words, key=len)
```

> Sorting is stable: items that compare equal keep their original order.

- See [the Sorting HOW TO](https://docs.python.org/3/howto/sorting.html)
- ~~Use `cmp=`~~ (gone since Python 3)
'''
WIDE_TABLE_REPLY = (
    "| Function | Returns | Sorts in place | Accepts any iterable | Stable | Key function | Reverse |\n"
    "|---|---|---|---|---|---|---|\n"
    "| `sorted(items)` | a new list | no | yes | yes | `key=` | `reverse=True` |\n"
    "| `items.sort()` | `None` | yes | lists only | yes | `key=` | `reverse=True` |\n\n"
    "```python\nprint(sorted(['banana', 'Apple', 'cherry'], key=str.casefold, reverse=True))  # a long line\n```\n"
)
COLOURFUL_CODE_REPLY = """```python
import os.path  # a comment

@dataclass
class Point:
    \"\"\"A point.\"\"\"
    x: int = 16
    y: float = 2.5

    def show(self) -> str:
        return f"{self.x} is {True}"
```
"""
CODE = '''def by_length(words: list[str]) -> list[str]:
    """Shortest first; equal lengths keep their order."""
    return sorted(words, key=len)
'''
# What a rendered reply may contain (conversations/markdown.py's allow-list, and what nh3 adds to links).
REPLY_TAGS = [
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "s", "del", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td", "span", "div",
]  # fmt: skip
REPLY_ATTRIBUTES = ["href", "title", "class", "target", "rel", "start"]
# Run in the page after each hostile message: a list of what is wrong, empty when all is well.
INERT_PAGE = """([replyTags, replyAttributes]) => {
    const problems = [];
    if (typeof window.__pwned !== "undefined") problems.push(`window.__pwned is ${window.__pwned}`);
    for (const script of document.scripts) {
        if (!script.src.startsWith(location.origin + "/static/")) {
            problems.push(`a script that is not the page's own: ${script.outerHTML.slice(0, 100)}`);
        }
    }
    const list = document.getElementById("message-list");
    const loaders =
        "img, iframe, frame, object, embed, video, audio, source, svg, math, script, style, link, meta, base";
    for (const element of list.querySelectorAll(loaders)) problems.push(`<${element.localName}> in the message list`);
    for (const body of list.querySelectorAll("article:not([data-optimistic]) .message__body")) {
        const reply = body.closest(".message--assistant") !== null;
        for (const element of body.querySelectorAll("*")) {
            if (element.matches(".code-block__head > button[data-copy-code]")) continue; // chat.js's own
            const tag = element.localName;
            if (!reply) problems.push(`<${tag}> in a message the person typed (it should be text only)`);
            else if (!replyTags.includes(tag)) problems.push(`<${tag}> in a reply`);
            for (const { name, value } of element.attributes) {
                // chat.js makes sideways-scrolling tables and code focusable: exactly these values.
                const focusable = { tabindex: "0", role: "region", "aria-label": tag === "table" ? "Table" : "Code" };
                if (["table", "pre"].includes(tag) && focusable[name] === value) continue;
                if (!replyAttributes.includes(name)) problems.push(`<${tag} ${name}="${value}">`);
            }
            const href = element.getAttribute("href");
            if (tag === "a" && href !== null && !/^(https?:\\/\\/|mailto:)/i.test(href)) {
                problems.push(`a link to ${href}`);
            }
            if (tag === "a" && (element.target !== "_blank" || !element.relList.contains("noopener"))) {
                problems.push(`a link without target=_blank rel=noopener: ${element.outerHTML}`);
            }
        }
    }
    return problems;
}"""


class Intrusions:
    """What hostile text could make the browser do: dialogs, new windows, other frames, and
    requests to any host but the live server (those are recorded and aborted)."""

    def __init__(self, page: Page, live_server):
        self.dialogs: list[str] = []
        self.popups: list[str] = []
        self.foreign_requests: list[str] = []
        self._host = urlsplit(live_server.url).netloc
        self._page = page
        page.on("dialog", self._dialog)
        page.on("request", self._request)
        page.context.on("page", lambda popup: self.popups.append(popup.url))
        page.context.route(lambda url: not self._is_ours(url), lambda route: route.abort("blockedbyclient"))

    def _is_ours(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme == "http" and parts.netloc == self._host

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _request(self, request) -> None:
        if not self._is_ours(request.url):
            self.foreign_requests.append(request.url)

    def assert_none(self, when: str) -> None:
        # Two frames: time for handlers of anything just inserted (onerror, onload, autofocus) to run.
        self._page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
        problems = self._page.evaluate(INERT_PAGE, [REPLY_TAGS, REPLY_ATTRIBUTES])
        assert problems == [], f"{when}: {problems}"
        assert self.dialogs == [], f"{when}: dialogs opened: {self.dialogs}"
        assert self.popups == [], f"{when}: windows opened: {self.popups}"
        assert self.foreign_requests == [], f"{when}: requests to other hosts: {self.foreign_requests}"
        assert len(self._page.frames) == 1, f"{when}: frames appeared: {[f.url for f in self._page.frames]}"


def stored_conversation(owner, title: str, turns: list[tuple[str, str]]) -> Conversation:
    """A conversation saved as if it had happened: each turn a question and a finished reply."""
    conversation = Conversation.objects.create(owner=owner, title=title, model="mistralai/mistral-tiny")
    parent = None
    for question, answer in turns:
        parent = Message.objects.create(
            conversation=conversation, role=Message.Role.USER, content=question, parent=parent
        )
        parent = Message.objects.create(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            content=answer,
            parent=parent,
            model=conversation.model,
        )
    conversation.current_message = parent
    conversation.save(update_fields=["current_message"])
    return conversation


def test_it_runs_nothing_from_the_hostile_corpus_whether_the_model_sends_it_or_the_person_types_it(
    page, live_server, upstream, alice
):
    intrusions = Intrusions(page, live_server)
    sign_in(page, live_server, alice)
    saved = page.locator(SAVED)
    typed = page.locator(f"{SAVED}.message--user {BODY}")
    batch_size = 13  # a conversation per batch keeps each page and each history short

    for start in range(0, len(PAYLOADS), batch_size):
        batch = PAYLOADS[start : start + batch_size]
        page.goto("/")
        for turn, payload in enumerate(batch, start=1):
            upstream.reply(payload)  # the model answers with the same hostile text, as Markdown
            send(page, payload)
            expect(saved).to_have_count(2 * turn)
            expect(saved.last).to_have_class(re.compile(r"\bis-complete\b"))  # `done` swapped in the Markdown
            intrusions.assert_none(f"after payload {start + turn - 1} ({payload!r}) was sent and answered")
        url = page.url

        page.reload()

        expect(saved).to_have_count(2 * len(batch))
        intrusions.assert_none(f"after reloading the conversation of payloads {start} to {start + len(batch) - 1}")
        assert typed.evaluate_all("bodies => bodies.map(body => body.textContent)") == [p.strip() for p in batch]
        expect(page).to_have_url(url)

    assert len(upstream.completion_requests) == len(PAYLOADS)


def test_it_renders_a_markdown_reply_with_a_table_highlighted_code_and_a_safe_link(page, live_server, upstream, alice):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    upstream.reply(MARKDOWN_REPLY)
    sign_in(page, live_server, alice)
    reply = page.locator(SAVED).nth(1)
    code_block = reply.locator(".code-block")

    send(page, "How do I sort a list?")

    expect(reply).to_have_class(re.compile(r"\bis-complete\b"))
    for moment in ("after the stream", "after a reload"):
        if moment == "after a reload":
            page.reload()
        expect(reply.locator("h2")).to_have_text("Sorting in Python")
        expect(reply.locator("table th")).to_have_text(["Function", "Returns", "Stable"])
        expect(reply.locator("table td")).to_have_text(
            ["sorted(items)", "a new list", "yes", "items.sort()", "None", "yes"]
        )
        expect(reply.locator("table td code")).to_have_count(3)
        expect(reply.locator("table th").last).to_have_class("align-right")
        expect(code_block.locator(".code-block__lang")).to_have_text("python")
        expect(code_block.locator("pre code")).to_have_text(CODE)
        expect(code_block.locator("pre code span.k").first).to_have_text("def")  # keywords and names are marked up
        expect(code_block.locator("pre code span.nf")).to_have_text("by_length")
        expect(reply.locator("blockquote")).to_contain_text("Sorting is stable")
        expect(reply.locator("li s")).to_have_text("Use cmp=")
        link = reply.get_by_role("link", name="the Sorting HOW TO")
        expect(link).to_have_attribute("href", "https://docs.python.org/3/howto/sorting.html")
        expect(link).to_have_attribute("target", "_blank")
        assert {"noopener", "noreferrer"} <= set(link.get_attribute("rel").split()), moment
    # code.css colours the marked-up code: a keyword is not the colour of plain code text.
    colours = code_block.evaluate(
        "block => [block.querySelector('span.k'), block.querySelector('span.p')].map(s => getComputedStyle(s).color)"
    )
    assert colours[0] != colours[1], colours

    # localhost is a secure context, so chat.js copies through the Clipboard API.
    code_block.get_by_role("button", name="Copy code").click()

    expect(code_block.locator("[data-copy-code]")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == CODE

    reply.get_by_role("button", name="Copy message").click()

    expect(reply.get_by_role("button", name="Copy message")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()").strip() == MARKDOWN_REPLY.strip()  # the Markdown itself


def test_it_offers_copy_on_the_code_blocks_of_a_reply_as_soon_as_it_is_finished(page, live_server, upstream, alice):
    upstream.reply(MARKDOWN_REPLY)
    sign_in(page, live_server, alice)
    reply = page.locator(SAVED).nth(1)

    send(page, "How do I sort a list?")

    expect(reply).to_have_class(re.compile(r"\bis-complete\b"))
    expect(reply.locator(".code-block__lang")).to_have_text("python")
    # The finished reply replaced the streamed one in a single step: its buttons come with it.
    assert reply.locator(".code-block__head [data-copy-code]").count() == 1


def test_it_fits_a_phone_with_the_conversations_behind_a_menu(open_page, live_server, upstream, alice):
    long_answer = (
        "A paragraph long enough to wrap over several lines on a phone, " * 4
        + "\n\n| a wide | table | with | many | columns | that | does | not | fit |\n"
        + "|---|---|---|---|---|---|---|---|---|\n| " + " | ".join(["somewhat-long-cell"] * 9) + " |\n\n"
        + "```python\nprint('a code line far longer than any phone is wide, which scrolls inside its block')\n```"
    )  # fmt: skip
    long_chat = stored_conversation(alice, "A long chat", [(f"Question {n}", long_answer) for n in range(1, 16)])
    page = open_page(viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in(page, live_server, alice)
    menu = page.locator("[data-menu]")
    sidebar = page.locator("#sidebar")
    composer = page.locator(COMPOSER)
    send_button = page.locator("#composer button[type=submit]")

    expect(menu).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(sidebar).to_be_hidden()
    expect(composer).to_be_in_viewport(ratio=1)
    expect(send_button).to_be_in_viewport(ratio=1)

    menu.tap()
    expect(sidebar).to_be_visible()
    expect(sidebar).to_be_in_viewport(ratio=1)
    expect(menu).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Escape")
    expect(sidebar).to_be_hidden()
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(menu).to_be_focused()

    menu.tap()
    expect(sidebar).to_be_visible()
    page.touchscreen.tap(370, 420)  # on the dimmed chat, beside the sidebar (at most 85% of the width)
    expect(sidebar).to_be_hidden()
    expect(menu).to_have_attribute("aria-expanded", "false")

    menu.tap()
    sidebar.get_by_role("link", name="A long chat").tap()
    expect(page).to_have_url(conversation_url(live_server, long_chat))
    expect(sidebar).to_be_hidden()
    expect(page.locator(SAVED)).to_have_count(30)
    expect(page.locator(SAVED).last).to_be_in_viewport()  # scrolled to the newest
    expect(composer).to_be_in_viewport(ratio=1)
    expect(send_button).to_be_in_viewport(ratio=1)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # wide tables and code scroll

    send(page, "One more question")

    expect_finished(page.locator(SAVED).last, "Echo: One more question")
    expect(page.locator(SAVED).last).to_be_in_viewport()
    expect(composer).to_be_in_viewport(ratio=1)


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
    for _ in range(20):
        keyboard.press("Tab")
        if composer.evaluate("t => t === document.activeElement"):
            break
    else:
        pytest.fail("20 presses of Tab never reached the composer")
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


AXE_RUN = """async options => {
    const results = await axe.run(document, options);
    const where = target => {
        const element = document.querySelector(target[0]);
        if (element && element.closest(".code-block pre")) return "code";
        return element && element.closest(".markdown") ? "reply" : "page";
    };
    return results.violations.filter(v => v.impact === "serious" || v.impact === "critical").map(v => ({
        id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
        nodes: v.nodes.map(node => ({target: node.target, where: where(node.target), summary: node.failureSummary})),
    }));
}"""


def serious_axe_violations(page: Page, *, only: list[str] | None = None) -> list[dict]:
    """axe-core's violations of impact serious or critical on the page as it is now; each node
    says `where` it is: in highlighted "code", elsewhere in a "reply", or on the "page"."""
    # Evaluated by the test driver, not added as a <script>: the Content-Security-Policy would refuse
    # an inline script, and the page must stay under the policy it is served with.
    page.evaluate(AXE.read_text())
    options = {"resultTypes": ["violations"]}
    if only:
        options["runOnly"] = {"type": "rule", "values": only}
    return page.evaluate(AXE_RUN, options)


def describe_violations(violations: list[dict]) -> str:
    return "axe-core found serious problems:\n" + "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']} ({v['helpUrl']})\n"
        + "\n".join(f"    {node['target']} in {node['where']}: {node['summary']}" for node in v["nodes"])
        for v in violations
    )


@pytest.mark.parametrize("device", ["desktop", "phone"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_it_has_no_serious_accessibility_violations_on_a_chat_with_markdown_replies(
    open_page, live_server, alice, scheme, device
):
    conversation = stored_conversation(
        alice,
        "Sorting in Python",
        [("How do I sort a list?", MARKDOWN_REPLY), ("Compare them in a wide table", WIDE_TABLE_REPLY)],
    )
    if device == "phone":
        page = open_page(color_scheme=scheme, viewport=PHONE, is_mobile=True, has_touch=True)
    else:
        page = open_page(color_scheme=scheme)
    sign_in(page, live_server, alice)
    page.goto(conversation_url(live_server, conversation))
    expect(page.locator("html")).to_have_attribute("data-theme", scheme)
    expect(page.locator("[data-copy-code]")).to_have_count(2)  # chat.js has run

    violations = serious_axe_violations(page)

    assert violations == [], describe_violations(violations)


def test_it_lets_the_keyboard_scroll_wide_tables_and_code(open_page, live_server, alice):
    conversation = stored_conversation(alice, "Wide things", [("Compare them in a wide table", WIDE_TABLE_REPLY)])
    page = open_page(viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in(page, live_server, alice)
    page.goto(conversation_url(live_server, conversation))
    wide = page.locator("#message-list .markdown").locator("table, pre")
    expect(wide).to_have_count(2)
    # Both really scroll sideways on a phone, so the rule has something to check.
    assert wide.evaluate_all("elements => elements.map(e => e.scrollWidth > e.clientWidth)") == [True, True]

    violations = serious_axe_violations(page, only=["scrollable-region-focusable"])

    assert violations == [], describe_violations(violations)


@pytest.mark.parametrize(
    "scheme",
    [
        "light",
        "dark",
    ],
)
def test_it_highlights_code_with_enough_contrast(open_page, live_server, alice, scheme):
    conversation = stored_conversation(alice, "Highlighting", [("Show me some Python", COLOURFUL_CODE_REPLY)])
    page = open_page(color_scheme=scheme)
    sign_in(page, live_server, alice)
    page.goto(conversation_url(live_server, conversation))
    expect(page.locator("html")).to_have_attribute("data-theme", scheme)
    for token in ("c1", "mi", "mf", "kc", "nd", "nc", "nn", "si", "sd"):  # comment, numbers, True, @, names...
        expect(page.locator(f"#message-list .code-block pre span.{token}").first).to_be_visible()

    violations = serious_axe_violations(page, only=["color-contrast"])

    assert violations == [], describe_violations(violations)


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


def test_the_admin_works_under_the_content_security_policy(open_page, live_server, django_user_model):
    django_user_model.objects.create_superuser(username="root", password=PASSWORD)
    page = open_page()
    page.goto("/admin/")
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()

    page.goto("/admin/auth/user/")
    page.get_by_role("link", name="root").click()
    expect(page.locator("#id_username")).to_have_value("root")
    # The admin's own scripts ran: the date/time shortcuts and the filter widgets are drawn by them.
    expect(page.locator(".selector-available, .datetimeshortcuts").first).to_be_attached()


def test_an_injected_inline_script_is_refused_and_reported(browser, live_server, alice):
    """What open_page's check relies on: Chromium refuses an inline script and says so on the console."""
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    page = context.new_page()
    messages = []
    page.on("console", lambda message: messages.append(message.text))
    sign_in(page, live_server, alice)

    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.x = 1'; document.body.append(s); }"
    )

    assert page.evaluate("() => window.x") is None
    assert any("Content Security Policy" in text for text in messages)
    context.close()


def test_an_admin_adds_a_key_and_opens_the_usage_page_within_the_content_security_policy(
    page, live_server, upstream, admin_user, alice
):
    from providers.models import ProviderKey
    from usage.models import Usage

    secret = "sk-browser-admin-secret-00007777"
    Usage.objects.create(user=alice, model="mistralai/mistral-tiny", status="complete", total_tokens=120)
    page.goto("/admin/login/")
    page.fill("#id_username", admin_user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    page.goto("/admin/providers/providerkey/add/")
    page.fill("#id_label", "Team key")
    page.fill("#id_base_url", upstream.base_url)
    page.fill("#id_secret", secret)
    page.click("input[name=_save]")
    expect(page.locator("#result_list")).to_contain_text("••••7777")
    page.goto("/admin/usage/usage/")

    expect(page.locator("#usage-chart rect")).to_have_count(30)
    # The page's stylesheet applied (a <style> block would have been refused by the CSP).
    assert page.locator("#usage-filters").evaluate("node => getComputedStyle(node).display") == "flex"
    expect(page.locator("#usage-top-users")).to_contain_text("alice")
    assert secret not in page.content()
    assert ProviderKey.objects.get().last4 == "7777"


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
