"""Services under real concurrency: a file SQLite database (or PostgreSQL) and threads."""

import threading
import uuid

import pytest
from django.core.management import call_command
from django.db import connection

from conversations import generation, services
from conversations.generation import turn
from conversations.models import Conversation, Message
from tests.conftest import settle


def _in_threads(count, target):
    errors, barrier = [], threading.Barrier(count)

    def run(index):
        try:
            barrier.wait()
            target(index)
        except Exception as exc:  # collected and asserted on below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return errors


@pytest.mark.django_db(transaction=True)
def test_a_simultaneous_double_submit_stores_one_message_and_calls_once(alice, upstream):
    upstream.hang(0.3)  # the first call is slow, so the second arrives while it is in flight
    conversation = Conversation.objects.create(owner=alice, model="m")
    client_id = uuid.uuid4()
    results = []

    errors = _in_threads(
        2,
        lambda _: results.append(
            services.message_send(conversation=conversation, content="Once please", client_id=client_id)
        ),
    )
    settle()

    assert errors == []
    assert sorted(created for _, _, created in results) == [False, True]
    assert conversation.messages.filter(role="user").count() == 1
    assert len(upstream.completion_requests) == 1


@pytest.mark.django_db(transaction=True)
def test_many_people_writing_at_once_all_get_stored(django_user_model, upstream):
    people = [django_user_model.objects.create_user(username=f"user{i}") for i in range(8)]

    errors = _in_threads(
        8,
        lambda i: services.conversation_start(
            owner=people[i], content=f"Hello from {i}", model="m", client_id=uuid.uuid4()
        ),
    )

    settle()
    assert errors == [], "concurrent writers must wait for each other, not fail with 'database is locked'"
    assert Message.objects.filter(role="user").count() == 8
    assert Message.objects.filter(role="assistant", status="complete").count() == 8


@pytest.mark.django_db(transaction=True)
def test_two_retry_clicks_make_one_upstream_call(alice, upstream):
    conversation = Conversation.objects.create(owner=alice, model="m")
    question = Message.objects.create(conversation=conversation, role="user", content="Again")
    failed = Message.objects.create(
        conversation=conversation, role="assistant", status="error", error="boom", parent=question
    )
    upstream.hang(0.3)

    errors = _in_threads(2, lambda _: services.message_retry(message=Message.objects.get(pk=failed.pk)))
    settle()

    # The slower click either loses the compare-and-set or finds the reply already pending.
    assert all(isinstance(error, services.ChatError) for error in errors)
    failed.refresh_from_db()
    assert failed.status == "complete"
    assert len(upstream.completion_requests) == 1


@pytest.mark.django_db(transaction=True)
def test_the_message_is_committed_before_the_upstream_is_called(alice, upstream, monkeypatch):
    seen = {}
    original = turn.open_stream

    def spy(**kwargs):
        # The generating thread's own connection sees the stored message.
        seen["stored"] = Message.objects.filter(content="Keep me", status="complete").exists()
        return original(**kwargs)

    monkeypatch.setattr(turn, "open_stream", spy)
    services.conversation_start(owner=alice, content="Keep me", model="m")
    settle()

    assert seen == {"stored": True}


@pytest.mark.django_db
def test_ensure_admin_creates_the_first_admin_once_and_prints_the_password(capsys, monkeypatch, django_user_model):
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)

    call_command("ensure_admin")
    out = capsys.readouterr().out
    password = out.split("password: ")[1].split()[0]

    admin = django_user_model.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    call_command("ensure_admin")
    assert capsys.readouterr().out == ""
    assert django_user_model.objects.filter(is_superuser=True).count() == 1


@pytest.mark.django_db
def test_ensure_admin_takes_the_password_from_the_environment(capsys, monkeypatch, django_user_model):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "from-the-environment")

    call_command("ensure_admin")

    assert "from-the-environment" not in capsys.readouterr().out
    assert django_user_model.objects.get(username="root").check_password("from-the-environment")


@pytest.mark.django_db
def test_conversations_and_messages_are_in_the_admin(admin_client, alice):
    conversation = Conversation.objects.create(owner=alice, model="m", title="Visible to admins")
    Message.objects.create(conversation=conversation, role="user", content="hello admin")

    assert b"Visible to admins" in admin_client.get("/admin/conversations/conversation/").content
    assert admin_client.get(f"/admin/conversations/conversation/{conversation.pk}/change/").status_code == 200
    assert b"hello admin" in admin_client.get("/admin/conversations/message/").content


@pytest.mark.django_db(transaction=True)
def test_a_bug_of_ours_still_leaves_a_labelled_reply_to_retry(alice, upstream, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(turn, "build_messages", broken)

    user_message, reply, _ = services.conversation_start(owner=alice, content="Still saved?", model="m")
    settle()

    reply.refresh_from_db()
    assert (user_message.content, reply.status, reply.error_code) == ("Still saved?", "error", "internal")
    assert reply.error == generation.UNEXPECTED_ERROR
    monkeypatch.undo()
    services.message_retry(message=reply)
    settle()
    reply.refresh_from_db()
    assert (reply.status, reply.content) == ("complete", "Echo: Still saved?")
