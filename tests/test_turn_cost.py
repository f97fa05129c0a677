"""What a send costs the server: the statements it runs and the part of the sidebar it renders
(conversations.sidebar_update), and the saver's plain SQL."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations.generation import live, saver
from conversations.models import Conversation, Folder, Message
from tests.conftest import settle

pytestmark = pytest.mark.django_db(transaction=True)


def _form(content: str) -> dict:
    return {"content": content, "client_id": str(uuid.uuid4())}


def _chat(owner, title: str, *, ago: timedelta = timedelta(0), **fields) -> Conversation:
    conversation = Conversation.objects.create(owner=owner, model="m", title=title, **fields)
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now() - ago)
    conversation.refresh_from_db()
    return conversation


def _send(client, conversation: Conversation, content: str = "again"):
    client.csrf_token()  # the page load that sets the cookie is not counted
    with CaptureQueriesContext(connection) as queries:
        response = client.post(f"/c/{conversation.pk}/messages/", _form(content), htmx=True)
    settle()
    assert response.status_code == 200
    return response.content.decode(), [query["sql"] for query in queries]


def test_a_send_in_the_newest_chat_leaves_the_sidebar_alone(client_alice, alice, upstream):
    _chat(alice, "Older", ago=timedelta(minutes=5))
    newest = _chat(alice, "Newest")

    html, queries = _send(client_alice, newest)

    assert 'id="conversation-list"' not in html, "the sidebar would show the same rows"
    assert f'id="message-{Message.objects.filter(conversation=newest).order_by("id").last().pk}"' in html
    assert 'id="composer"' in html
    # session, user, conversation, the transaction (repeat check, quota, two messages, the
    # conversation's row), and one look at whether another chat leads the sidebar
    assert len(queries) <= 11, "\n".join(sql[:100] for sql in queries)
    assert not any('"auth_user"' in sql for sql in queries[2:]), "the owner was read again"


def test_a_send_after_a_reply_reads_the_repeat_check_and_the_parent_in_one_statement(client_alice, alice, upstream):
    chat = _chat(alice, "Newest")
    question = Message.objects.create(conversation=chat, role="user", content="Hi")
    reply = Message.objects.create(conversation=chat, role="assistant", content="Hello", parent=question)
    Conversation.objects.filter(pk=chat.pk).update(current_message=reply)
    chat.refresh_from_db()

    html, queries = _send(client_alice, chat)

    sent = Message.objects.filter(conversation=chat, role="user").order_by("id").last()
    assert sent.parent_id == reply.pk and f'id="message-{sent.pk}"' in html
    reads = [sql for sql in queries if sql.startswith("SELECT") and 'FROM "conversations_message"' in sql]
    assert len(reads) == 1, "\n".join(sql[:160] for sql in reads)
    assert len(queries) <= 11, "\n".join(sql[:100] for sql in queries)


def test_a_send_lower_in_the_list_renders_the_sidebar_with_it_on_top(client_alice, alice, upstream):
    lower = _chat(alice, "Lower", ago=timedelta(minutes=5))
    newest = _chat(alice, "Newest")

    html, _ = _send(client_alice, lower)

    assert 'id="conversation-list"' in html and 'hx-swap-oob="true"' in html
    assert html.index(f'id="conversation-{lower.pk}"') < html.index(f'id="conversation-{newest.pk}"')


def test_a_send_in_a_filed_chat_renders_the_sidebar_with_its_folder(client_alice, alice, upstream):
    folder = Folder.objects.create(owner=alice, name="Work")
    older = _chat(alice, "Older filed", ago=timedelta(minutes=5), folder=folder)
    _chat(alice, "Newest filed", folder=folder)
    _chat(alice, "Newest of all")

    html, _ = _send(client_alice, older)

    # The folder's own order changed; its section is drawn by the folders' query, so the sidebar is
    # rendered whole rather than guessed at.
    assert 'id="conversation-list"' in html
    assert html.index("Work") < html.index(f'id="conversation-{older.pk}"')


def test_a_send_in_a_temporary_chat_leaves_the_sidebar_alone(client_alice, alice, upstream):
    _chat(alice, "Kept", ago=timedelta(minutes=5))
    temporary = _chat(alice, "Not kept", temporary=True)
    client_alice.get(f"/c/{temporary.pk}/")  # its own page sets the CSRF cookie (a new chat would leave it)

    response = client_alice.post(f"/c/{temporary.pk}/messages/", _form("again"), htmx=True)
    settle()
    html = response.content.decode()

    assert response.status_code == 200
    assert 'id="conversation-list"' not in html and f'id="conversation-{temporary.pk}"' not in html


def test_a_send_in_yesterdays_chat_renders_the_sidebar_under_today(client_alice, alice, upstream):
    yesterday = _chat(alice, "Yesterday's", ago=timedelta(days=1, minutes=1))

    html, _ = _send(client_alice, yesterday)

    assert 'id="conversation-list"' in html
    assert html.index("Today") < html.index(f'id="conversation-{yesterday.pk}"')


def test_a_first_message_that_titles_the_chat_renders_the_sidebar(client_alice, alice, upstream):
    untitled = _chat(alice, "")

    html, _ = _send(client_alice, untitled, "A question about owls")

    assert 'id="conversation-list"' in html and "A question about owls" in html


def test_a_send_in_an_archived_chat_leaves_the_list_alone(client_alice, alice, upstream):
    _chat(alice, "Shown")
    archived = _chat(alice, "Archived", archived_at=timezone.now())

    html, _ = _send(client_alice, archived)

    assert 'id="conversation-list"' not in html


def test_a_pinned_chat_is_compared_with_the_pinned_ones_only(client_alice, alice, upstream):
    first_pinned = _chat(alice, "Pinned a", ago=timedelta(minutes=5), pinned_at=timezone.now())
    _chat(alice, "Pinned b", pinned_at=timezone.now())
    _chat(alice, "Unpinned, newer than both")

    html, _ = _send(client_alice, first_pinned)

    assert 'id="conversation-list"' in html, "it moves above the other pinned chat"


def test_a_new_chat_is_one_row_above_todays_newest(client_alice, alice, upstream):
    newest = _chat(alice, "Newest")
    _chat(alice, "Pinned", pinned_at=timezone.now())
    client_alice.csrf_token()

    with CaptureQueriesContext(connection) as queries:
        response = client_alice.post("/c/", _form("A new question"), htmx=True)
    settle()

    html = response.content.decode()
    created = Conversation.objects.get(owner=alice, title="A new question")
    assert 'id="conversation-list"' not in html
    row = html[html.index(f'hx-swap-oob="beforebegin:#conversation-{newest.pk}"') :]
    assert row.index(f'id="conversation-{created.pk}"') < row.index("</div>")
    assert 'aria-current="page"' in row and "A new question" in row
    # session, user, repeat check, quota, the transaction (the conversation, two messages, its
    # title and current message), and the row that led the list; not the person's folders (the
    # header's "Move to folder" menu loads when it is opened)
    assert len(queries) <= 11, "\n".join(query["sql"][:100] for query in queries)
    assert not any("_check" in query["sql"] for query in queries), "the settings' bounds went to the database"
    assert not any('"conversations_folder"' in query["sql"] for query in queries), "the folders were read"
    assert f'hx-get="/c/{created.pk}/manage/?panel=header"' in html


@pytest.mark.parametrize("ago", [None, timedelta(days=2)], ids=["first chat", "first chat today"])
def test_a_new_chat_renders_the_sidebar_when_it_starts_a_group(client_alice, alice, upstream, ago):
    if ago is not None:
        _chat(alice, "Old", ago=ago)

    response = client_alice.post("/c/", _form("A new question"), htmx=True)
    settle()

    html = response.content.decode()
    assert 'id="conversation-list"' in html
    assert html.index("Today") < html.index("A new question</a>")


def test_a_repeated_new_chat_submit_renders_the_sidebar_as_before(client_alice, alice, upstream):
    form = _form("Once")
    client_alice.post("/c/", form, htmx=True)
    settle()

    again = client_alice.post("/c/", form, htmx=True)

    assert again.status_code == 200 and 'id="conversation-list"' in again.content.decode()
    assert Conversation.objects.filter(owner=alice).count() == 1


def test_the_saver_writes_the_text_and_hears_a_stop_with_its_plain_sql(alice):
    conversation = _chat(alice, "Saved")
    streaming, stopped = (
        Message.objects.create(conversation=conversation, role="assistant", status="pending") for _ in range(2)
    )
    Message.objects.filter(pk=stopped.pk).update(stop_requested=True)
    finished = Message.objects.create(conversation=conversation, role="assistant", status="complete", content="Done")
    replies = {message.pk: live.Live(bus=None, text="so far") for message in (streaming, stopped, finished)}
    live.running.update(replies)
    try:
        assert saver.save_progress() == [stopped.pk]
    finally:
        for message_id in replies:
            live.running.pop(message_id, None)

    streaming.refresh_from_db()
    assert (streaming.content, streaming.status, streaming.html_version) == ("so far", "streaming", 0)
    assert streaming.updated_at > conversation.updated_at
    assert Message.objects.get(pk=finished.pk).content == "Done", "a final save is never undone"
    assert replies[streaming.pk].saved_length == len("so far")
    assert Message._meta.db_table == "conversations_message", "the saver's SQL names this table"


def test_the_saver_hears_a_stop_while_no_reply_has_new_text(alice):
    conversation = _chat(alice, "Waiting")
    waiting, stopped = (
        Message.objects.create(conversation=conversation, role="assistant", status="pending") for _ in range(2)
    )
    Message.objects.filter(pk=stopped.pk).update(stop_requested=True)
    before = Message.objects.get(pk=waiting.pk).updated_at
    replies = {message.pk: live.Live(bus=None) for message in (waiting, stopped)}
    live.running.update(replies)
    try:
        with CaptureQueriesContext(connection) as queries:
            assert saver.save_progress() == [stopped.pk]
    finally:
        for message_id in replies:
            live.running.pop(message_id, None)

    assert [query["sql"].split()[0] for query in queries] == ["SELECT"], "nothing is written while nothing is new"
    assert Message.objects.get(pk=waiting.pk).updated_at == before
