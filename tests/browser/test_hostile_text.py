"""Hostile text in Chromium, from the model or typed by the person: shown as text or as allowed
Markdown, it opens no dialog or window, runs no script and reaches no other host."""

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import BODY, SAVED, WRITING, expect_finished, send, sign_in
from tests.xss_corpus import PAYLOADS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

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
