"""Temporary chats: labelled, never listed, searched, exported or shared, and deleted with their messages
when their owner leaves them (not on a reload, never while a reply is written) or after TEMPORARY_CHAT_HOURS."""

import io
import time
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from conversations.models import Conversation, Folder, Message, ShareLink
from tests.conftest import is_generating, settle
from usage.models import Usage

pytestmark = pytest.mark.django_db(transaction=True)


def _start(client, content="a secret draft", *, temporary=True):
    data = {"content": content, "client_id": str(uuid.uuid4())}
    if temporary:
        data["temporary"] = "1"
    response = client.post("/c/", data, htmx=True)
    assert response.status_code == 200
    return response, Conversation.objects.filter(temporary=temporary).latest("id")


def _wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def test_a_temporary_chat_is_labelled_and_not_listed(client_alice, alice, upstream):
    kept = Conversation.objects.create(owner=alice, model="m", title="A kept chat")

    response, chat = _start(client_alice)
    settle()
    page = client_alice.get(f"/c/{chat.pk}/").content.decode()

    assert chat.temporary
    for html in (response.content.decode(), page):
        assert "Temporary chat: not kept" in html
        assert f'id="conversation-{chat.pk}"' not in html, "never in the sidebar"
    # The send leaves the sidebar the page shows as it is (the chat is not in it); a page load lists the rest.
    assert 'id="conversation-list"' not in response.content.decode()
    assert f'id="conversation-{kept.pk}"' in page
    assert "Create link" not in page and "export.json" not in page.split('id="chat-title"')[1]


def test_the_new_chat_form_offers_the_switch(client_alice):
    html = client_alice.get("/").content.decode()

    assert 'name="temporary" value="1"' in html and "Temporary chat" in html


def test_a_reload_keeps_it_and_opening_another_chat_deletes_it_with_its_messages(client_alice, alice, upstream):
    other = Conversation.objects.create(owner=alice, model="m", title="Another chat")
    _, chat = _start(client_alice)
    settle()
    message_ids = list(chat.messages.values_list("pk", flat=True))

    reloaded = client_alice.get(f"/c/{chat.pk}/")
    assert reloaded.status_code == 200 and Conversation.objects.filter(pk=chat.pk).exists()

    client_alice.get(f"/c/{other.pk}/", htmx=True)  # a sidebar link (hx-boost)

    assert not Conversation.objects.filter(pk=chat.pk).exists()
    assert not Message.objects.filter(pk__in=message_ids).exists()
    assert client_alice.get(f"/c/{chat.pk}/").status_code == 404
    assert Conversation.objects.filter(pk=other.pk).exists()


def test_usage_is_still_recorded_without_the_message(client_alice, alice, upstream):
    _, chat = _start(client_alice)
    settle()
    assert Usage.objects.filter(user=alice, message__conversation=chat).count() == 1

    client_alice.get("/")  # a new chat

    usage = Usage.objects.get(user=alice)
    assert usage.message_id is None and usage.total_tokens > 0 and usage.model


def test_a_new_chat_leaves_it(client_alice, alice, upstream):
    _, chat = _start(client_alice)
    settle()

    client_alice.get("/")

    assert not Conversation.objects.filter(pk=chat.pk).exists()


def test_signing_out_leaves_it(client_alice, alice, upstream):
    _, chat = _start(client_alice)
    settle()

    client_alice.post("/accounts/logout/")

    assert not Conversation.objects.filter(pk=chat.pk).exists()


def test_leaving_never_touches_kept_chats_or_another_persons(client_alice, client_bob, alice, bob, upstream):
    kept = Conversation.objects.create(owner=alice, model="m", title="Kept")
    _, bobs = _start(client_bob)
    settle()

    client_alice.get("/")
    client_alice.post("/accounts/logout/")

    assert Conversation.objects.filter(pk=kept.pk, deleted_at__isnull=True).exists()
    assert Conversation.objects.filter(pk=bobs.pk, deleted_at__isnull=True).exists()


def test_it_is_kept_until_the_reply_is_finished(client_alice, alice, upstream):
    upstream.stream("one two three four five six seven eight nine ten", delay=0.1)
    _, chat = _start(client_alice)
    reply = chat.messages.get(role="assistant")
    _wait_for(lambda: is_generating(reply.pk))

    client_alice.get("/")  # left while the reply is written

    chat.refresh_from_db()
    assert chat.deleted_at is not None, "hidden at once"
    assert client_alice.get(f"/c/{chat.pk}/").status_code == 404
    assert Message.objects.filter(pk=reply.pk).exists(), "kept while the reply is written"
    settle()
    reply.refresh_from_db()
    assert reply.status == "complete" and reply.content.startswith("one two")

    client_alice.get("/")  # the next page deletes it, now that the reply is finished

    assert not Conversation.objects.filter(pk=chat.pk).exists()


def test_purge_deletes_left_chats_once_their_reply_is_finished(client_alice, alice, upstream):
    upstream.stream("one two three four five six seven eight", delay=0.1)
    _, chat = _start(client_alice)
    reply = chat.messages.get(role="assistant")
    _wait_for(lambda: is_generating(reply.pk))
    client_alice.get("/")

    call_command("purge_trash", stdout=io.StringIO())
    assert Conversation.objects.filter(pk=chat.pk).exists(), "not while the reply is written"
    settle()
    call_command("purge_trash", stdout=io.StringIO())

    assert not Conversation.objects.filter(pk=chat.pk).exists()


def test_an_idle_temporary_chat_expires_after_the_set_hours(alice, settings):
    settings.TEMPORARY_CHAT_HOURS = 24
    now = timezone.now()
    old = Conversation.objects.create(owner=alice, model="m", temporary=True, updated_at=now - timedelta(hours=25))
    recent = Conversation.objects.create(owner=alice, model="m", temporary=True, updated_at=now - timedelta(hours=23))
    kept = Conversation.objects.create(owner=alice, model="m", updated_at=now - timedelta(days=400))

    call_command("purge_trash", stdout=io.StringIO())

    assert list(Conversation.objects.order_by("pk").values_list("pk", flat=True)) == [recent.pk, kept.pk]
    assert not Conversation.objects.filter(pk=old.pk).exists()


def test_a_stale_reply_does_not_keep_it_forever(alice, client_alice):
    chat = Conversation.objects.create(owner=alice, model="m", temporary=True)
    question = Message.objects.create(conversation=chat, role="user", content="hi")
    Message.objects.create(conversation=chat, role="assistant", status="pending", parent=question)
    Message.objects.filter(conversation=chat).update(updated_at=timezone.now() - timedelta(hours=2))

    client_alice.get("/")

    assert not Conversation.objects.filter(pk=chat.pk).exists()


def test_it_is_never_searched(client_alice, alice, upstream):
    _, chat = _start(client_alice, "zebra crossing")
    settle()
    Conversation.objects.create(owner=alice, model="m", title="zebra facts")

    html = client_alice.get("/c/list/?q=zebra", htmx=True).content.decode()

    assert "zebra facts" in html
    assert f"/c/{chat.pk}/" not in html


def test_it_is_never_exported(client_alice, alice, upstream):
    _, chat = _start(client_alice, "zebra crossing")
    settle()

    everything = b"".join(client_alice.get("/history/export.json").streaming_content)
    one = client_alice.get(f"/c/{chat.pk}/export.json")
    markdown = client_alice.get(f"/c/{chat.pk}/export.md")

    assert b"zebra" not in everything
    assert one.status_code == markdown.status_code == 409
    assert "cannot be exported" in one.content.decode()


def test_sharing_it_is_refused_with_a_clear_message(client_alice, alice, upstream):
    _, chat = _start(client_alice)
    settle()

    response = client_alice.post(f"/c/{chat.pk}/share/", htmx=True)
    plain = client_alice.post(f"/c/{chat.pk}/share/")

    assert response.status_code == plain.status_code == 409
    assert "A temporary chat cannot be shared" in response.content.decode()
    assert not ShareLink.objects.exists()


def test_it_cannot_be_filed_in_a_folder(client_alice, alice, upstream):
    folder = Folder.objects.create(owner=alice, name="Work")
    _, chat = _start(client_alice)
    settle()

    response = client_alice.post(f"/c/{chat.pk}/folder/", {"folder": folder.pk}, htmx=True)

    assert response.status_code == 422
    chat.refresh_from_db()
    assert chat.folder is None


def test_a_kept_chat_started_without_the_switch_stays(client_alice, alice, upstream):
    _, chat = _start(client_alice, temporary=False)
    settle()

    client_alice.get("/")

    assert Conversation.objects.filter(pk=chat.pk, temporary=False, deleted_at__isnull=True).exists()


def test_pinned_or_archived_it_is_still_never_listed(client_alice, alice, upstream):
    _, chat = _start(client_alice, "zebra crossing")
    settle()

    client_alice.post(f"/c/{chat.pk}/pin/", {"pinned": "1"}, htmx=True)
    pinned = client_alice.get(f"/c/{chat.pk}/").content.decode()
    client_alice.post(f"/c/{chat.pk}/archive/", {"archived": "1"}, htmx=True)
    archived = client_alice.get("/c/list/?archived=1", htmx=True).content.decode()

    assert f'id="conversation-{chat.pk}"' not in pinned
    assert f'id="conversation-{chat.pk}"' not in archived
