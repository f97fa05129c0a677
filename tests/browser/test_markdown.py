"""A Markdown reply in Chromium: tables, highlighted code and safe links, with Copy on the code
and on the whole message."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import MARKDOWN_REPLY, SAVED, send, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CODE = '''def by_length(words: list[str]) -> list[str]:
    """Shortest first; equal lengths keep their order."""
    return sorted(words, key=len)
'''


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
