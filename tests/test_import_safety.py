"""Imports that cannot hurt anyone else: short write batches with staged rows made visible at the
end, a send that meets a locked database keeps the message, models only from the catalogue, and
files the parser cannot read answered with a reason.

The locking tests run on the file SQLite database of the suite (pytest's in-memory one hides
locking), with a short busy timeout so that a long lock shows in seconds.
"""

import io
import json
import sqlite3
import threading
import uuid
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import DatabaseError, OperationalError, connection
from django.utils import timezone

from conversations import services
from conversations.models import Conversation, Message
from providers.models import ChatModel
from tests.conftest import CheckedClient, settle

pytestmark = pytest.mark.django_db(transaction=True)

DEFAULT_MODEL = "mistralai/mistral-tiny"  # AIMLAPI_MODEL of the test run, in the seeded catalogue


def _export(conversations: int, messages: int, *, model: str = DEFAULT_MODEL, title: str = "Imported") -> bytes:
    """A chatsite export: `conversations` chains of `messages` messages each."""
    return json.dumps(
        {
            "format": "chatsite-export",
            "version": 1,
            "conversations": [
                {
                    "title": f"{title} {number}",
                    "model": model,
                    "current": messages - 1 if messages else None,
                    "messages": [
                        {
                            "role": "user" if index % 2 == 0 else "assistant",
                            "content": f"line {index} of chat {number}",
                            "parent": index - 1 if index else None,
                        }
                        for index in range(messages)
                    ],
                }
                for number in range(conversations)
            ],
        }
    ).encode()


def _upload(client, content: bytes):
    return client.post("/history/", {"file": SimpleUploadedFile("export.json", content)})


sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="about SQLite's single write lock")


@pytest.fixture
def busy_timeout():
    """Connections opened from now on wait at most `seconds` for SQLite's write lock (PostgreSQL has none)."""
    if connection.vendor != "sqlite":
        yield lambda seconds: None
        return
    options = connection.settings_dict["OPTIONS"]
    original = options.get("timeout")

    def set_timeout(seconds: float) -> None:
        options["timeout"] = seconds  # the settings dict every thread's connection is made from
        connection.close()

    yield set_timeout
    options["timeout"] = original
    connection.close()


class _Import(threading.Thread):
    """Alice's upload of `content` through /history/, in a thread of its own (its own connection).

    `hook` (an execute wrapper, see django.db.connection.execute_wrapper) sees every statement it runs.
    """

    def __init__(self, user, content: bytes, hook):
        super().__init__(daemon=True)
        self.client = CheckedClient()
        self.client.force_login(user)
        self.content, self.hook, self.response, self.error = content, hook, None, None

    def run(self):
        try:
            with connection.execute_wrapper(self.hook):
                self.response = _upload(self.client, self.content)
        except BaseException as error:  # reported by the test
            self.error = error
        finally:
            connection.close()


def _when(predicate, event: threading.Event):
    """An execute wrapper that sets `event` before the first statement for which `predicate(sql)` is true."""

    def hook(execute, sql, params, many, context):
        if predicate(sql):
            event.set()
        return execute(sql, params, many, context)

    return hook


def _inserts_messages(sql: str) -> bool:
    return sql.startswith('INSERT INTO "conversations_message"')


# --- 1. A large import does not lock anyone else out ------------------------------------


def test_a_message_sent_during_a_large_import_is_stored(alice, bob, client_bob, upstream, busy_timeout):
    busy_timeout(1.0)
    upstream.reply("Noted.")
    bobs = Conversation.objects.create(owner=bob, model=DEFAULT_MODEL, title="Bob's chat")
    writing = threading.Event()
    importing = _Import(alice, _export(10, 500), _when(_inserts_messages, writing))
    importing.start()
    assert writing.wait(30), "the import never started writing messages"

    # The import is writing now (in one long transaction before the fix).
    response = client_bob.post(f"/c/{bobs.pk}/messages/", {"content": "Sent while Alice imports"}, htmx=True)

    assert response.status_code == 200
    assert bobs.messages.filter(role="user", content="Sent while Alice imports").exists()
    importing.join(120)
    assert importing.error is None and importing.response.status_code == 200
    imported = Conversation.objects.filter(owner=alice, deleted_at__isnull=True, import_batch__isnull=True)
    assert imported.count() == 10
    assert Message.objects.filter(conversation__owner=alice).count() == 10 * 500
    chat = imported.get(title="Imported 3")
    assert chat.current_message.content == "line 499 of chat 3"
    # The chain survived being cut into batches: every message hangs from the one before.
    rows = list(chat.messages.order_by("id").values_list("id", "parent_id"))
    assert rows[0][1] is None and all(parent == rows[i][0] for i, (_, parent) in enumerate(rows[1:]))
    settle()


@sqlite_only  # pauses the import between two of its BEGINs, which only SQLite's backend sends as SQL
def test_staged_conversations_stay_out_of_every_page_until_the_import_ends(
    alice, client_alice, admin_user, client_admin, busy_timeout
):
    busy_timeout(5.0)
    paused, resume = threading.Event(), threading.Event()
    begins = []

    def pause_before_the_third_batch(execute, sql, params, many, context):
        if sql.startswith("BEGIN"):
            begins.append(sql)
            if len(begins) == 3:  # two batches are committed, staged
                paused.set()
                resume.wait(30)
        return execute(sql, params, many, context)

    importing = _Import(alice, _export(6, 150, title="Staged"), pause_before_the_third_batch)
    importing.start()
    try:
        assert paused.wait(30), "the import never began a third transaction: it is not written in batches"
        staged = Conversation.objects.filter(owner=alice)
        assert staged.exists(), "the first batches are committed"
        one = staged.first()

        assert "Staged" not in client_alice.get("/").content.decode()
        assert "Staged" not in client_alice.get("/?archived=1").content.decode()
        assert f"/c/{one.pk}/" not in client_alice.get("/c/list/?q=Staged", htmx=True).content.decode()
        assert f"/c/{one.pk}/" not in client_alice.get("/c/list/?q=line+chat", htmx=True).content.decode()
        exported = b"".join(client_alice.get("/history/export.json").streaming_content)
        assert json.loads(exported)["conversations"] == []
        assert client_alice.get(f"/c/{one.pk}/").status_code == 404
        assert client_alice.get(f"/c/{one.pk}/export.json").status_code == 404
        assert client_alice.post(f"/c/{one.pk}/share/").status_code == 404
        assert "Staged" not in client_alice.get(f"/?undo={one.pk}").content.decode()
        assert client_alice.post(f"/c/{one.pk}/restore/").status_code == 404
        assert "Staged" not in client_admin.get("/admin/conversations/conversation/").content.decode()
        assert "Staged" not in client_admin.get("/admin/conversations/message/").content.decode()
    finally:
        resume.set()
        importing.join(120)

    assert importing.error is None and importing.response.status_code == 200
    assert "Staged 5" in client_alice.get("/").content.decode()
    assert Conversation.objects.filter(owner=alice, deleted_at__isnull=True).count() == 6
    assert f"/c/{one.pk}/" in client_alice.get("/c/list/?q=Staged", htmx=True).content.decode()
    exported = b"".join(client_alice.get("/history/export.json").streaming_content)
    assert len(json.loads(exported)["conversations"]) == 6


def test_a_failed_large_import_leaves_nothing_behind(alice, bob):
    Conversation.objects.create(owner=bob, model=DEFAULT_MODEL, title="Bob's")
    inserts = []

    def fail_on_the_fourth_batch(execute, sql, params, many, context):
        if _inserts_messages(sql):
            inserts.append(sql)
            if len(inserts) == 4:
                raise DatabaseError("disk I/O error")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(fail_on_the_fourth_batch), pytest.raises(DatabaseError):
        services.conversation_import(owner=alice, raw=_export(5, 300))

    assert len(inserts) == 4
    assert not Conversation.objects.filter(owner=alice).exists()
    assert not Message.objects.filter(conversation__owner=alice).exists()
    assert list(Conversation.objects.values_list("title", flat=True)) == ["Bob's"]


def test_a_tree_cut_into_batches_keeps_every_parent_and_the_current_branch(alice, client_alice):
    # 450 messages, more than two batches; each answers the one at half its index (a wide tree).
    parents = [None] + [index // 2 for index in range(1, 450)]
    messages = [{"role": "user", "content": f"node {index}", "parent": parent} for index, parent in enumerate(parents)]
    content = {"format": "chatsite-export", "version": 1, "conversations": [{"title": "Tree", "model": DEFAULT_MODEL}]}
    content["conversations"][0].update(messages=messages, current=301)

    assert _upload(client_alice, json.dumps(content).encode()).status_code == 200

    conversation = Conversation.objects.get(owner=alice, title="Tree")
    exported = b"".join(client_alice.get(f"/c/{conversation.pk}/export.json").streaming_content)
    (again,) = json.loads(exported)["conversations"]
    assert [message["parent"] for message in again["messages"]] == parents
    assert again["current"] == 301


def _staged(owner, *, batch, age: timedelta, title: str) -> Conversation:
    conversation = Conversation.objects.create(
        owner=owner, model=DEFAULT_MODEL, title=title, import_batch=batch, deleted_at=timezone.now() - age
    )
    first = Message.objects.create(conversation=conversation, role="user", content="staged question")
    Message.objects.create(conversation=conversation, role="assistant", content="staged answer", parent=first)
    return conversation


def test_an_import_whose_process_died_is_removed_later(alice, bob, client_alice):
    dead, running = uuid.uuid4(), uuid.uuid4()
    _staged(alice, batch=dead, age=timedelta(hours=3), title="Died")
    _staged(bob, batch=uuid.uuid4(), age=timedelta(hours=2), title="Died too")
    _staged(bob, batch=running, age=timedelta(seconds=5), title="Still importing")

    call_command("purge_trash", stdout=io.StringIO())

    assert list(Conversation.objects.values_list("title", flat=True)) == ["Still importing"]
    assert Message.objects.filter(conversation__title__startswith="Died").count() == 0

    _staged(alice, batch=uuid.uuid4(), age=timedelta(hours=2), title="Died again")
    assert _upload(client_alice, _export(1, 2, title="Fresh")).status_code == 200

    assert set(Conversation.objects.filter(owner=alice).values_list("title", flat=True)) == {"Fresh 0"}


# --- 1. The send path and a locked database -------------------------------------------------


class _OtherWriter:
    """Another process's write transaction on the test database, from `hold()` to `release()`."""

    def __init__(self, path: str):
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.held = False

    def hold(self):
        self.db.execute("BEGIN IMMEDIATE")
        self.held = True

    def release(self):
        if self.held:
            self.db.execute("ROLLBACK")
            self.held = False


@pytest.fixture
def other_writer(busy_timeout):
    if connection.vendor != "sqlite":
        pytest.skip("about SQLite's single write lock")
    writer = _OtherWriter(connection.settings_dict["NAME"])
    yield writer
    writer.release()
    writer.db.close()


def test_a_send_that_meets_a_locked_database_keeps_the_message(bob, client_bob, upstream, busy_timeout, other_writer):
    busy_timeout(0.2)
    upstream.reply("Here now.")
    bobs = Conversation.objects.create(owner=bob, model=DEFAULT_MODEL)
    client_bob.csrf_token()
    client_id = str(uuid.uuid4())
    data = {"content": "Please keep me", "client_id": client_id}
    other_writer.hold()

    response = client_bob.post(f"/c/{bobs.pk}/messages/", data, htmx=True)

    # htmx swaps no 503: the text stays in the composer, and chat.js shows this line.
    assert response.status_code == 503 and response["Content-Type"].startswith("text/plain")
    assert "not stored" in response.content.decode() and "still in the box" in response.content.decode()
    other_writer.release()
    assert not Message.objects.filter(content="Please keep me").exists()

    again = client_bob.post(f"/c/{bobs.pk}/messages/", data, htmx=True)

    assert again.status_code == 200
    assert Message.objects.filter(content="Please keep me", client_id=client_id).count() == 1
    settle()


def test_a_new_chat_that_meets_a_locked_database_keeps_the_message(bob, client_bob, busy_timeout, other_writer):
    busy_timeout(0.2)
    client_bob.csrf_token()
    other_writer.hold()

    response = client_bob.post("/c/", {"content": "My first words"})

    assert response.status_code == 503
    assert "My first words</textarea>" in response.content.decode()
    assert "not stored" in response.content.decode()
    other_writer.release()
    assert not Conversation.objects.filter(owner=bob).exists()


def test_a_send_survives_a_lock_that_ends_after_the_first_attempt(
    bob, client_bob, upstream, busy_timeout, other_writer
):
    busy_timeout(0.2)
    upstream.reply("Made it.")
    bobs = Conversation.objects.create(owner=bob, model=DEFAULT_MODEL)
    client_bob.csrf_token()
    refused = []
    other_writer.hold()

    def release_after_the_first_refusal(execute, sql, params, many, context):
        try:
            return execute(sql, params, many, context)
        except OperationalError:
            refused.append(sql)
            other_writer.release()  # the other writer commits while this request is still trying
            raise

    with connection.execute_wrapper(release_after_the_first_refusal):
        response = client_bob.post(f"/c/{bobs.pk}/messages/", {"content": "Second time lucky"}, htmx=True)

    assert refused and response.status_code == 200
    assert bobs.messages.filter(role="user", content="Second time lucky").count() == 1
    settle()
    assert bobs.messages.get(role="assistant").content == "Made it."


# --- 2. Only the catalogue's models reach the upstream ------------------------------------

CHATGPT = [
    {
        "title": "Trip ideas",
        "create_time": 1700000000.5,
        "current_node": "a1",
        "mapping": {
            "root": {"parent": None, "children": ["u1"], "message": None},
            "u1": {
                "parent": "root",
                "children": ["a1"],
                "message": {"author": {"role": "user"}, "content": {"parts": ["Where to go in May?"]}},
            },
            "a1": {
                "parent": "u1",
                "children": [],
                "message": {
                    "author": {"role": "assistant"},
                    "content": {"parts": ["Lisbon."]},
                    "metadata": {"model_slug": "gpt-4o"},
                },
            },
        },
    }
]


def test_an_imported_chatgpt_model_is_neither_offered_nor_sent(alice, client_alice, upstream):
    upstream.reply("Porto is lovely too.")
    assert _upload(client_alice, json.dumps(CHATGPT).encode()).status_code == 200
    conversation = Conversation.objects.get(owner=alice)

    assert conversation.model == DEFAULT_MODEL
    assert conversation.imported_model == "gpt-4o"
    page = client_alice.get(f"/c/{conversation.pk}/").content.decode()
    assert 'value="gpt-4o"' not in page
    assert conversation.messages.get(role="assistant").model == "gpt-4o"  # who answered, as information

    client_alice.post(f"/c/{conversation.pk}/messages/", {"content": "And Porto?"}, htmx=True)
    settle()

    assert [request.json["model"] for request in upstream.completion_requests] == [DEFAULT_MODEL]


def test_an_imported_model_is_kept_only_when_the_catalogue_lists_it(alice, client_alice, client_admin):
    ChatModel.objects.create(model_id="mistralai/mistral-small", display_name="Mistral Small")
    content = json.loads(_export(1, 1, model="mistralai/mistral-small"))
    unknown = json.loads(_export(1, 1, model="vendor/very-expensive", title="Unknown"))
    content["conversations"] += unknown["conversations"]

    assert _upload(client_alice, json.dumps(content).encode()).status_code == 200

    models = dict(Conversation.objects.filter(owner=alice).values_list("title", "model"))
    assert models == {"Imported 0": "mistralai/mistral-small", "Unknown 0": DEFAULT_MODEL}
    unknown = Conversation.objects.get(title="Unknown 0")
    assert unknown.imported_model == "vendor/very-expensive"
    admin_page = client_admin.get(f"/admin/conversations/conversation/{unknown.pk}/change/")
    assert admin_page.status_code == 200 and "vendor/very-expensive" in admin_page.content.decode()


def test_a_chat_whose_model_is_not_offered_is_never_sent_with_it(alice, client_alice, upstream):
    # A row from before imports checked the catalogue, or whose catalogue entry was deleted.
    conversation = Conversation.objects.create(owner=alice, model="gpt-4o")
    upstream.reply("From the default model.")
    assert 'value="gpt-4o"' not in client_alice.get(f"/c/{conversation.pk}/").content.decode()

    response = client_alice.post(f"/c/{conversation.pk}/messages/", {"content": "Hello"}, htmx=True)
    settle()

    assert response.status_code == 200
    assert [request.json["model"] for request in upstream.completion_requests] == [DEFAULT_MODEL]
    conversation.refresh_from_db()
    assert conversation.model == DEFAULT_MODEL
    assert 'value="gpt-4o"' not in client_alice.get(f"/c/{conversation.pk}/").content.decode()


def test_with_no_model_offered_nothing_is_sent(alice, client_alice, upstream):
    ChatModel.objects.update_or_create(model_id=DEFAULT_MODEL, defaults={"display_name": "Tiny", "enabled": False})
    conversation = Conversation.objects.create(owner=alice, model="gpt-4o")

    response = client_alice.post(f"/c/{conversation.pk}/messages/", {"content": "Hello"}, htmx=True)

    assert response.status_code == 422
    assert "No model is available" in response.content.decode()
    assert upstream.completion_requests == []
    assert not conversation.messages.exists()


# --- 7. Files the parser cannot read --------------------------------------------------------

NESTED = [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"format": "chatsite-export", "version": 1, "conversations": [{"title": '
    + b'{"a": ' * 50_000
    + b"1"
    + b"}" * 50_000
    + b"}]}",
]


@pytest.mark.parametrize("content", NESTED, ids=["lists", "objects-inside-an-export"])
def test_a_deeply_nested_file_gets_a_reason_and_changes_nothing(alice, client_alice, content):
    Conversation.objects.create(owner=alice, model=DEFAULT_MODEL, title="Before")

    response = _upload(client_alice, content)

    assert response.status_code == 422
    assert "nests lists or objects too deeply" in response.content.decode()
    assert list(Conversation.objects.values_list("title", flat=True)) == ["Before"]
