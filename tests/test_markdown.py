"""Replies as Markdown: rich where it should be, inert where it must be."""

import re
import time
import uuid
from html.parser import HTMLParser
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations import markdown
from conversations.models import Conversation, Message
from tests.conftest import settle
from tests.xss_corpus import EVIL, PAYLOADS

# The only elements and attributes a rendered reply may contain: nothing that runs script,
# loads a resource or styles the page.
SAFE_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "s", "del", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td", "span", "div",
}  # fmt: skip
SAFE_ATTRIBUTES = {"href", "title", "target", "rel", "class", "start"}


class Elements(HTMLParser):
    """Every element of a fragment with its attributes, as a browser's parser would see them."""

    def __init__(self, html: str):
        super().__init__()
        self.found: list[tuple[str, dict]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def test_the_corpus_is_big_enough():
    assert len(PAYLOADS) >= 40


@pytest.mark.parametrize("payload", PAYLOADS)
def test_hostile_markdown_renders_inert(payload):
    html = markdown.render(payload)

    for tag, attributes in Elements(html).found:
        assert tag in SAFE_TAGS, html
        assert set(attributes) <= SAFE_ATTRIBUTES, html
        if "href" in attributes:
            assert re.match(r"(https?://|mailto:)", attributes["href"]), html
        if tag == "a":
            assert (attributes["target"], attributes["rel"]) == ("_blank", "noopener noreferrer nofollow"), html


def test_it_renders_headings_lists_tables_strikethrough_and_links():
    html = markdown.render(
        "## Plan\n\n- one\n- **two**\n\n| a | b |\n|:-|-:|\n| 1 | 2 |\n\n~~old~~ [docs](https://example.com)"
    )

    assert "<h2>Plan</h2>" in html
    assert "<li><strong>two</strong></li>" in html
    assert '<th class="align-left">a</th>' in html and '<td class="align-right">2</td>' in html
    assert "<s>old</s>" in html
    assert '<a href="https://example.com" target="_blank" rel="noopener noreferrer nofollow">docs</a>' in html


def test_fenced_code_is_highlighted_with_its_language_shown():
    html = markdown.render("```python\ndef f():\n    return 1\n```")

    assert '<div class="code-block__lang">python</div>' in html
    assert '<span class="k">def</span><span class="w"> </span><span class="nf">f</span>' in html


def test_code_in_an_unknown_language_is_shown_escaped():
    html = markdown.render("```nosuchlang\n<b>x</b>\n```")

    assert '<div class="code-block__lang">nosuchlang</div>' in html
    assert "<pre><code>&lt;b&gt;x&lt;/b&gt;\n</code></pre>" in html


def test_an_image_becomes_a_link_and_is_never_loaded():
    html = markdown.render(f"![chart]({EVIL}/c.png)")

    assert "<img" not in html
    assert f'<a href="{EVIL}/c.png" target="_blank" rel="noopener noreferrer nofollow">Image: chart</a>' in html


def test_relative_links_are_dropped():
    html = markdown.render("[admin](/admin/auth/user/) [up](../x)")

    assert "href" not in html


def test_the_highlighting_stylesheet_matches_the_renderer():
    css = Path(settings.BASE_DIR, "static", "css", "code.css").read_text()

    assert markdown.pygments_css() in css, "regenerate static/css/code.css (command in its first lines)"


@pytest.mark.django_db
def test_a_message_is_stored_with_its_html_and_a_new_renderer_is_applied_by_the_command(alice, monkeypatch):
    conversation = Conversation.objects.create(owner=alice, model="m")
    message = Message.objects.create(conversation=conversation, role="assistant", content="**bold**")

    stored = Message.objects.get(pk=message.pk)
    assert (stored.content_html, stored.html_version) == ("<p><strong>bold</strong></p>\n", markdown.VERSION)
    calls = []
    monkeypatch.setattr(markdown, "render", lambda text: calls.append(text) or "<p>new</p>")
    assert str(stored.html) == "<p><strong>bold</strong></p>\n" and calls == []

    monkeypatch.setattr(markdown, "VERSION", markdown.VERSION + 1)
    assert str(Message.objects.get(pk=message.pk).html) == "<p>new</p>" and calls == ["**bold**"]
    assert Message.objects.get(pk=message.pk).content_html == "<p><strong>bold</strong></p>\n", "a read wrote"

    call_command("rerender_messages", stdout=StringIO())
    stored = Message.objects.get(pk=message.pk)
    assert (stored.content_html, stored.html_version) == ("<p>new</p>", markdown.VERSION)


@pytest.mark.django_db
def test_a_page_with_out_of_date_html_renders_it_without_writing(client_alice, alice, monkeypatch):
    conversation = Conversation.objects.create(owner=alice, model="m")
    question = Message.objects.create(conversation=conversation, role="user", content="Hi")
    Message.objects.create(conversation=conversation, role="assistant", content="**bold**", parent=question)
    monkeypatch.setattr(markdown, "VERSION", markdown.VERSION + 1)

    with CaptureQueriesContext(connection) as queries:
        html = client_alice.get(f"/c/{conversation.pk}/").content.decode()

    assert "<p><strong>bold</strong></p>" in html
    writes = [query["sql"] for query in queries if not query["sql"].lstrip().upper().startswith("SELECT")]
    assert not [sql for sql in writes if "conversations_message" in sql], writes


@pytest.mark.django_db(transaction=True)
def test_a_reply_is_saved_with_its_html_and_marked_out_of_date_while_it_streams(client_alice, alice, upstream):
    upstream.stream(["**Stored** ", "once"], delay=0.5)
    client_alice.post("/c/", {"content": "Hello", "client_id": str(uuid.uuid4())}, htmx=True)
    deadline = time.monotonic() + 5
    while not Message.objects.filter(role="assistant", status="streaming").exists():
        assert time.monotonic() < deadline, "the saver stored no text"
        time.sleep(0.01)

    streaming = Message.objects.get(role="assistant")
    assert (streaming.content, streaming.html_version) == ("**Stored** ", 0)
    settle()
    reply = Message.objects.get(role="assistant")
    assert (reply.status, reply.content) == ("complete", "**Stored** once")
    assert (reply.content_html, reply.html_version) == ("<p><strong>Stored</strong> once</p>\n", markdown.VERSION)


@pytest.mark.django_db
def test_the_page_renders_replies_as_markdown_and_what_people_typed_as_text(client_alice, alice):
    conversation = Conversation.objects.create(owner=alice, model="m")
    question = Message.objects.create(conversation=conversation, role="user", content="**not bold** <b>typed</b>")
    Message.objects.create(conversation=conversation, role="assistant", content="**bold** <b>raw</b>", parent=question)

    html = client_alice.get(f"/c/{conversation.pk}/").content.decode()

    assert '<div class="message__body">**not bold** &lt;b&gt;typed&lt;/b&gt;</div>' in html
    assert '<div class="message__body markdown"><p><strong>bold</strong> &lt;b&gt;raw&lt;/b&gt;</p>' in html
    assert 'data-copy="**bold** &lt;b&gt;raw&lt;/b&gt;"' in html, "Copy gives the raw Markdown"
