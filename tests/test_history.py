"""History: the paged, grouped sidebar, long conversations, rename, pin, archive, delete and undo, share links."""

import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations import services
from conversations.models import Conversation, Message, ShareLink, title_from
from conversations.sidebar import SIDEBAR_PAGE, sidebar_page

pytestmark = pytest.mark.django_db


def _chats(owner, count, *, start=None, step=timedelta(hours=1), prefix="Chat"):
    start = start or timezone.now()
    return Conversation.objects.bulk_create(
        [
            Conversation(owner=owner, model="m", title=f"{prefix} {number}", updated_at=start - step * number)
            for number in range(count)
        ]
    )


def _chain(conversation, count):
    parent = None
    for number in range(count):
        role = "user" if number % 2 == 0 else "assistant"
        parent = Message.objects.create(
            conversation=conversation, role=role, content=f"message {number}", parent=parent
        )
    conversation.current_message = parent
    conversation.save(update_fields=["current_message"])
    return parent


def _titles(html):
    return re.findall(
        r'<li id="conversation-\d+"[^>]*>\s*<a href="/c/\d+/"[^>]*>(?:<span[^>]*>★</span> )?([^<]*)</a>', html
    )


# --- Sidebar ------------------------------------------------------------------------


def test_the_sidebar_groups_conversations_by_day(alice):
    now = timezone.now()
    for title, age in [("new", 0), ("yesterday", 1), ("this week", 4), ("this month", 20), ("last year", 300)]:
        Conversation.objects.create(owner=alice, model="m", title=title, updated_at=now - timedelta(days=age))

    page = sidebar_page(alice)

    assert [(group.label, [item.title for item in group.items]) for group in page.groups] == [
        ("Today", ["new"]),
        ("Yesterday", ["yesterday"]),
        ("Previous 7 days", ["this week"]),
        ("Previous 30 days", ["this month"]),
        ("Older", ["last year"]),
    ]


def test_pages_follow_each_other_without_gaps_or_repeated_headings(alice, client_alice):
    _chats(alice, SIDEBAR_PAGE * 2 + 5, step=timedelta(minutes=1))
    same_time = _chats(alice, 3, start=timezone.now() - timedelta(days=3), step=timedelta(0), prefix="Tie")

    first = client_alice.get("/").content.decode()
    cursor = re.search(r'hx-get="/c/list/\?cursor=([^&]+)&amp;group=([^&"]*)', first)
    second = client_alice.get(f"/c/list/?cursor={cursor[1]}&group={cursor[2]}", htmx=True).content.decode()
    cursor = re.search(r'hx-get="/c/list/\?cursor=([^&]+)&amp;group=([^&"]*)', second)
    third = client_alice.get(f"/c/list/?cursor={cursor[1]}&group={cursor[2]}", htmx=True).content.decode()

    shown = _titles(first) + _titles(second) + _titles(third)
    assert len(shown) == len(set(shown)) == SIDEBAR_PAGE * 2 + 5 + len(same_time)
    assert "cursor=" not in third, "the last page offers no more"
    assert first.count(">Today<") == 1 and ">Today<" not in second, "a heading is not repeated on the next page"
    assert ">Previous 7 days<" in third


def test_load_more_works_without_javascript(alice, client_alice):
    _chats(alice, SIDEBAR_PAGE + 1)

    first = client_alice.get("/").content.decode()
    after = re.search(r'href="/\?after=([^"&]+)"', first)[1]
    second = client_alice.get(f"/?after={after}").content.decode()

    assert _titles(second) == [f"Chat {SIDEBAR_PAGE}"]


def test_pinned_come_first_and_archived_and_deleted_leave_the_list(alice, client_alice):
    chats = _chats(alice, 4)
    client_alice.post(f"/c/{chats[3].pk}/pin/", {"pinned": "1"}, htmx=True)
    client_alice.post(f"/c/{chats[1].pk}/archive/", {"archived": "1"}, htmx=True)
    response = client_alice.post(f"/c/{chats[2].pk}/delete/", htmx=True)

    html = response.content.decode()
    assert _titles(html) == ["Chat 3", "Chat 0"]
    assert ">Pinned<" in html
    assert "Deleted “Chat 2”" in html and f"/c/{chats[2].pk}/restore/" in html
    archived = client_alice.get("/?archived=1").content.decode()
    assert _titles(archived) == ["Chat 1"]


@pytest.mark.parametrize("conversations", [5, 60])
def test_the_sidebar_costs_the_same_queries_however_many_conversations(alice, client_alice, conversations):
    chats = _chats(alice, conversations)
    services.conversation_pin(conversation=chats[-1], pinned=True)
    client_alice.get("/")  # the session, warmed

    with CaptureQueriesContext(connection) as queries:
        response = client_alice.get("/")

    assert response.status_code == 200
    # user, pinned, folders (none here), one page of conversations, and the temporary chats the
    # person left by opening a new chat (and the session, unless Redis holds it)
    ours = [query["sql"] for query in queries if "django_session" not in query["sql"]]
    assert len(ours) == 5, "\n".join(sql[:90] for sql in ours)


def test_the_sidebar_page_stays_within_its_query_budget(alice, client_alice, django_assert_max_num_queries):
    _chats(alice, 120)
    with django_assert_max_num_queries(4):
        client_alice.get("/c/list/?cursor=1.1&group=Today", htmx=True)


# --- Long conversations -----------------------------------------------------------------


@pytest.mark.parametrize("messages", [6, 260])
def test_a_conversation_page_costs_the_same_queries_however_many_messages(
    alice, client_alice, messages, django_assert_max_num_queries
):
    conversation = Conversation.objects.create(owner=alice, model="m", title="long")
    _chain(conversation, messages)
    client_alice.get(f"/c/{conversation.pk}/")  # renders and stores each message's HTML once

    # session, user, conversation, temporary chats left, tree shape, shown messages, share link,
    # pinned, folders, sidebar page, own feedback
    with django_assert_max_num_queries(11):
        response = client_alice.get(f"/c/{conversation.pk}/")

    assert response.status_code == 200


def test_a_long_conversation_shows_the_newest_100_and_loads_older_ones(alice, client_alice):
    conversation = Conversation.objects.create(owner=alice, model="m", title="long")
    _chain(conversation, 250)

    html = client_alice.get(f"/c/{conversation.pk}/").content.decode()

    shown = re.findall(r'id="message-(\d+)"', html)
    assert len(shown) == 100
    assert ">message 249<" in html and ">message 150<" in html and ">message 149<" not in html
    older = re.search(r'hx-get="(/c/\d+/older/\?before=\d+&amp;leaf=\d+)"', html)[1].replace("&amp;", "&")
    page = client_alice.get(older, htmx=True).content.decode()
    assert len(re.findall(r'id="message-(\d+)"', page)) == 100
    assert ">message 149<" in page and ">message 50<" in page and ">message 49<" not in page
    last = re.search(r'hx-get="(/c/\d+/older/\?before=\d+&amp;leaf=\d+)"', page)[1].replace("&amp;", "&")
    rest = client_alice.get(last, htmx=True).content.decode()
    assert len(re.findall(r'id="message-(\d+)"', rest)) == 50
    assert "older/?before" not in rest, "the first message has nothing before it"


def test_a_link_to_an_old_message_shows_it_and_replies_continue_the_branch(alice, client_alice):
    conversation = Conversation.objects.create(owner=alice, model="m", title="long")
    last = _chain(conversation, 250)
    old = conversation.messages.get(content="message 10")

    html = client_alice.get(f"/c/{conversation.pk}/?m={old.pk}").content.decode()

    assert f'id="message-{old.pk}"' in html
    assert "go to the newest" in html
    assert re.search(rf'name="parent" value="{last.pk}"', html), "the composer answers the newest message"


# --- Rename, pin, archive, delete and undo ------------------------------------------------


def test_it_renames_inline(alice, client_alice):
    conversation = Conversation.objects.create(owner=alice, model="m", title="Old")

    response = client_alice.post(f"/c/{conversation.pk}/rename/", {"title": "  Trip   to <Rome>  "}, htmx=True)

    conversation.refresh_from_db()
    assert conversation.title == "Trip to <Rome>"
    assert response.status_code == 200
    assert "Trip to &lt;Rome&gt;" in response.content.decode()


def test_a_too_long_title_is_refused_and_changes_nothing(alice, client_alice):
    conversation = Conversation.objects.create(owner=alice, model="m", title="Old")

    response = client_alice.post(f"/c/{conversation.pk}/rename/", {"title": "x" * 81}, htmx=True)

    assert response.status_code == 422
    assert "at most 80 characters" in response.content.decode()
    conversation.refresh_from_db()
    assert conversation.title == "Old"


def test_delete_hides_everywhere_and_undo_brings_it_back(alice, client_alice):
    conversation = Conversation.objects.create(owner=alice, model="m", title="Secret plan")
    Message.objects.create(conversation=conversation, role="user", content="buried treasure")
    link = services.share_create(conversation=conversation)

    client_alice.post(f"/c/{conversation.pk}/delete/", htmx=True)

    assert client_alice.get(f"/c/{conversation.pk}/").status_code == 404
    assert "Secret plan" not in client_alice.get("/?archived=1").content.decode()
    assert "buried" not in client_alice.get("/c/list/?q=treasure", htmx=True).content.decode()
    assert client_alice.get(link.get_absolute_url()).status_code == 404

    response = client_alice.post(f"/c/{conversation.pk}/restore/", htmx=True)

    assert "Secret plan" in response.content.decode()
    assert client_alice.get(f"/c/{conversation.pk}/").status_code == 200
    assert "buried" in client_alice.get("/c/list/?q=treasure", htmx=True).content.decode()


def test_deleting_the_open_conversation_leaves_it_for_the_start_page_with_undo(alice, client_alice):
    conversation = Conversation.objects.create(owner=alice, model="m", title="Open one")

    response = client_alice.post(
        f"/c/{conversation.pk}/delete/",
        htmx=True,
        headers={"HX-Current-URL": f"http://testserver/c/{conversation.pk}/"},
    )

    assert response["HX-Redirect"] == f"/?undo={conversation.pk}"
    assert "Deleted “Open one”" in client_alice.get(response["HX-Redirect"]).content.decode()


def test_purge_trash_deletes_only_what_was_deleted_long_enough_ago(alice):
    old, recent, kept = _chats(alice, 3)
    _chain(old, 3)
    Conversation.objects.filter(pk=old.pk).update(deleted_at=timezone.now() - timedelta(hours=2))
    Conversation.objects.filter(pk=recent.pk).update(deleted_at=timezone.now())

    call_command("purge_trash", "--older-than-minutes", "60")

    assert set(Conversation.objects.values_list("pk", flat=True)) == {recent.pk, kept.pk}
    assert not Message.objects.filter(conversation_id=old.pk).exists()


def test_a_new_conversation_is_titled_from_its_first_message_at_a_word_boundary():
    title = title_from("Please   explain\nthe difference between " + "processes and threads " * 6)

    assert title.endswith("…") and len(title) <= 80
    assert title.startswith("Please explain the difference between processes and threads")
    assert title[:-1].split()[-1] in ("processes", "and", "threads")


# --- Another person's conversations --------------------------------------------------------


def _write_urls(pk):
    return [
        (f"/c/{pk}/rename/", {"title": "pwned"}),
        (f"/c/{pk}/pin/", {"pinned": "1"}),
        (f"/c/{pk}/archive/", {"archived": "1"}),
        (f"/c/{pk}/delete/", {}),
        (f"/c/{pk}/restore/", {}),
        (f"/c/{pk}/share/", {}),
        (f"/c/{pk}/share/revoke/", {}),
    ]


@pytest.mark.parametrize("index", range(7))
def test_another_person_gets_404_for_every_history_action(alice, client_bob, index):
    conversation = Conversation.objects.create(owner=alice, model="m", title="Alice's")
    link = services.share_create(conversation=conversation)
    url, data = _write_urls(conversation.pk)[index]

    response = client_bob.post(url, data, htmx=True)

    assert response.status_code == 404
    conversation.refresh_from_db()
    assert (conversation.title, conversation.pinned_at, conversation.archived_at, conversation.deleted_at) == (
        "Alice's",
        None,
        None,
        None,
    )
    assert ShareLink.objects.filter(conversation=conversation).count() == 1
    link.refresh_from_db()
    assert link.revoked_at is None


@pytest.mark.parametrize(
    "url", ["/c/{pk}/manage/", "/c/{pk}/older/?before=1", "/c/{pk}/export.json", "/c/{pk}/export.md"]
)
def test_another_person_cannot_read_a_conversation_through_history_pages(alice, client_bob, url):
    conversation = Conversation.objects.create(owner=alice, model="m", title="Alice's")
    Message.objects.create(conversation=conversation, role="user", content="alice only")

    response = client_bob.get(url.format(pk=conversation.pk), htmx=True)

    assert response.status_code == 404


def test_restore_of_a_conversation_in_the_trash_is_404_for_another_person(alice, client_bob):
    conversation = Conversation.objects.create(owner=alice, model="m", title="Alice's", deleted_at=timezone.now())

    assert client_bob.post(f"/c/{conversation.pk}/restore/", htmx=True).status_code == 404
    conversation.refresh_from_db()
    assert conversation.deleted_at is not None


# --- Share links ---------------------------------------------------------------------------


def test_a_share_link_shows_the_branch_read_only_to_anyone_and_nothing_else(alice, client_alice, anon_client):
    conversation = Conversation.objects.create(owner=alice, model="m", title="Shared chat")
    question = Message.objects.create(conversation=conversation, role="user", content="What is <b>2+2</b>?")
    old = Message.objects.create(conversation=conversation, role="assistant", content="five", parent=question)
    current = Message.objects.create(conversation=conversation, role="assistant", content="**four**", parent=question)
    conversation.current_message = current
    conversation.save()
    Conversation.objects.create(owner=alice, model="m", title="Private other chat")

    response = client_alice.post(f"/c/{conversation.pk}/share/", htmx=True)
    link = ShareLink.objects.get(conversation=conversation)
    assert link.get_absolute_url() in response.content.decode()
    assert len(link.token) >= 40

    page = anon_client.get(link.get_absolute_url())
    html = page.content.decode()
    assert page.status_code == 200
    assert page["X-Robots-Tag"].startswith("noindex")
    assert '<meta name="robots" content="noindex' in html
    assert "What is &lt;b&gt;2+2&lt;/b&gt;?" in html and "<strong>four</strong>" in html
    assert "five" not in html, "only the current branch"
    assert f"message-{old.pk}" not in html
    assert "Private other chat" not in html and "alice" not in html
    assert 'id="composer"' not in html and 'id="conversation-list"' not in html

    client_alice.post(f"/c/{conversation.pk}/share/revoke/", htmx=True)

    assert anon_client.get(link.get_absolute_url()).status_code == 404


def test_an_unknown_share_token_is_404(anon_client):
    assert anon_client.get("/s/not-a-token/").status_code == 404


# --- Model-made titles -------------------------------------------------------------------

LONG_QUESTION = "Could you please tell me everything about the history of the Roman Empire " * 2


@pytest.mark.django_db(transaction=True)
def test_a_model_titles_the_conversation_after_its_first_reply(client_alice, alice, upstream, settings):
    from tests.conftest import settle

    settings.CHAT_AUTO_TITLE_MODEL = "title-model"
    upstream.reply("Rome rose and fell.")
    upstream.reply('"Roman Empire history."')

    client_alice.post("/c/", {"content": LONG_QUESTION}, htmx=True)
    settle()

    assert Conversation.objects.get(owner=alice).title == "Roman Empire history"
    title_request = upstream.completion_requests[-1].json
    assert title_request["model"] == "title-model" and "Rome rose and fell." in str(title_request["messages"])


@pytest.mark.django_db(transaction=True)
def test_a_failed_title_call_keeps_the_first_messages_title(client_alice, alice, upstream, settings):
    from tests.conftest import settle

    settings.CHAT_AUTO_TITLE_MODEL = "title-model"
    upstream.reply("Rome rose and fell.")
    upstream.fail(500)

    client_alice.post("/c/", {"content": LONG_QUESTION}, htmx=True)
    settle()

    conversation = Conversation.objects.get(owner=alice)
    assert conversation.title.startswith("Could you please tell me everything") and conversation.title.endswith("…")
    assert conversation.messages.get(role="assistant").status == "complete"


@pytest.mark.django_db(transaction=True)
def test_without_the_setting_no_title_call_is_made(client_alice, alice, upstream):
    from tests.conftest import settle

    client_alice.post("/c/", {"content": "Hello there"}, htmx=True)
    settle()

    assert len(upstream.completion_requests) == 1
    assert Conversation.objects.get(owner=alice).title == "Hello there"
