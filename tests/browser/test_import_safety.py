"""In Chromium: a message that meets a database locked by another writer is not lost."""

import pytest
from playwright.sync_api import expect

from conversations.models import Conversation, Message
from tests.browser.helpers import COMPOSER, SAVED, send, sign_in
from tests.test_import_safety import DEFAULT_MODEL, busy_timeout, other_writer  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_send_refused_by_a_locked_database_says_so_and_keeps_the_text(
    page,
    live_server,
    upstream,
    bob,
    busy_timeout,  # noqa: F811
    other_writer,  # noqa: F811
):
    # Before the browser's first request: the live server keeps a database connection for each
    # keep-alive connection, made with the busy timeout of that moment.
    busy_timeout(0.2)
    conversation = Conversation.objects.create(owner=bob, model=DEFAULT_MODEL, title="Bob's chat")
    sign_in(page, live_server, bob)
    page.goto(f"/c/{conversation.pk}/")
    page.wait_for_load_state("load")
    other_writer.hold()

    send(page, "Do not lose me")

    expect(page.locator("#toast")).to_contain_text("your message was not stored. It is still in the box")
    expect(page.locator(COMPOSER)).to_have_value("Do not lose me")
    expect(page.locator(SAVED)).to_have_count(0)
    other_writer.release()
    assert not Message.objects.exists()
    assert upstream.completion_requests == []
