"""Export (chatsite JSON and Markdown) and import (chatsite JSON, ChatGPT's conversations.json)."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from conversations.models import Conversation, Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def branched(alice):
    """A conversation with settings, usage, a failure and two alternative replies."""
    conversation = Conversation.objects.create(
        owner=alice, model="mistralai/mistral-tiny", title="Branches", system_prompt="Be brief.", temperature=0.4
    )
    question = Message.objects.create(conversation=conversation, role="user", content="What is 2+2? <b>bold</b>")
    Message.objects.create(
        conversation=conversation, role="assistant", parent=question, status="error", error="Upstream timed out."
    )
    answer = Message.objects.create(
        conversation=conversation,
        role="assistant",
        parent=question,
        content="**4**",
        model="mistralai/mistral-tiny",
        finish_reason="stop",
        prompt_tokens=12,
        completion_tokens=3,
        total_tokens=15,
        latency_ms=420,
        first_token_ms=90,
    )
    conversation.current_message = answer
    conversation.save()
    return conversation


def _json(response) -> dict:
    assert response.status_code == 200
    return json.loads(b"".join(response.streaming_content))


def _upload(client, content: bytes, name="export.json"):
    return client.post("/history/", {"file": SimpleUploadedFile(name, content, content_type="application/json")})


def _snapshot():
    return (
        list(Conversation.objects.order_by("id").values_list("id", "title", "updated_at")),
        list(Message.objects.order_by("id").values_list("id", "content", "parent_id")),
    )


def test_the_json_export_holds_the_tree_settings_usage_and_times(branched, client_alice):
    data = _json(client_alice.get(f"/c/{branched.pk}/export.json"))

    assert (data["format"], data["version"]) == ("chatsite-export", 1)
    [conversation] = data["conversations"]
    assert conversation["params"] == {"temperature": 0.4, "top_p": None, "max_tokens": None}
    assert conversation["system_prompt"] == "Be brief."
    assert conversation["current"] == 2
    assert [(m["parent"], m["role"], m["status"]) for m in conversation["messages"]] == [
        (None, "user", "complete"),
        (0, "assistant", "error"),
        (0, "assistant", "complete"),
    ]
    assert conversation["messages"][2]["usage"] == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    assert conversation["messages"][2]["created_at"].endswith("+00:00")


def test_an_export_imported_again_gives_the_same_conversation(branched, client_alice, bob, client_bob):
    exported = _json(client_alice.get(f"/c/{branched.pk}/export.json"))

    response = _upload(client_bob, json.dumps(exported).encode())

    assert response.status_code == 200
    assert "Imported 1 conversation" in response.content.decode()
    copy = Conversation.objects.get(owner=bob)
    again = _json(client_bob.get(f"/c/{copy.pk}/export.json"))
    assert again["conversations"] == exported["conversations"]
    assert copy.messages.get(content="**4**").html == "<p><strong>4</strong></p>\n"
    assert copy.messages.get(content="**4**").content_html == "<p><strong>4</strong></p>\n", "stored by the import"


def test_export_all_streams_every_live_conversation_of_the_person(branched, alice, bob, client_alice):
    Conversation.objects.create(owner=alice, model="m", title="Second")
    Conversation.objects.create(owner=alice, model="m", title="Deleted", deleted_at=branched.updated_at)
    Conversation.objects.create(owner=bob, model="m", title="Bob's")

    data = _json(client_alice.get("/history/export.json"))
    markdown = b"".join(client_alice.get("/history/export.md").streaming_content).decode()

    assert sorted(c["title"] for c in data["conversations"]) == ["Branches", "Second"]
    assert "# Branches" in markdown and "# Second" in markdown and "Bob" not in markdown
    assert "**4**" in markdown and "Upstream timed out" not in markdown, "Markdown holds the current branch"


CHATGPT = [
    {
        "title": "Trip ideas",
        "create_time": 1700000000.5,
        "update_time": 1700000100.25,
        "current_node": "a2",
        "mapping": {
            "root": {"id": "root", "message": None, "parent": None, "children": ["sys"]},
            "sys": {
                "id": "sys",
                "message": {"author": {"role": "system"}, "content": {"content_type": "text", "parts": [""]}},
                "parent": "root",
                "children": ["u1"],
            },
            "u1": {
                "id": "u1",
                "message": {
                    "author": {"role": "user"},
                    "create_time": 1700000001,
                    "content": {"content_type": "text", "parts": ["Where to go in May?"]},
                },
                "parent": "sys",
                "children": ["a1", "a2"],
            },
            "a1": {
                "id": "a1",
                "message": {
                    "author": {"role": "assistant"},
                    "content": {"content_type": "text", "parts": ["Lisbon."]},
                    "metadata": {"model_slug": "gpt-4o"},
                },
                "parent": "u1",
                "children": [],
            },
            "a2": {
                "id": "a2",
                "message": {
                    "author": {"role": "assistant"},
                    "content": {"content_type": "text", "parts": ["Porto.", {"asset": "image"}]},
                    "metadata": {"model_slug": "gpt-4o"},
                },
                "parent": "u1",
                "children": [],
            },
        },
    }
]


def test_it_imports_a_chatgpt_export_with_its_branches(alice, client_alice):
    response = _upload(client_alice, json.dumps(CHATGPT).encode(), name="conversations.json")

    assert response.status_code == 200
    conversation = Conversation.objects.get(owner=alice)
    # gpt-4o is not in this site's catalogue: the chat gets the default model, the name is kept aside.
    assert (conversation.title, conversation.model) == ("Trip ideas", "mistralai/mistral-tiny")
    assert conversation.imported_model == "gpt-4o"
    assert conversation.created_at.timestamp() == 1700000000.5
    question, first, second = conversation.messages.order_by("id")
    assert (question.role, question.content, question.parent_id) == ("user", "Where to go in May?", None)
    assert (first.content, first.parent_id, second.content, second.parent_id) == (
        "Lisbon.",
        question.pk,
        "Porto.",
        question.pk,
    )
    assert conversation.current_message_id == second.pk
    page = client_alice.get(f"/c/{conversation.pk}/").content.decode()
    assert "Porto." in page and "1/2" not in page and "2/2" in page


BROKEN = [
    (b"not json at all", "not valid JSON"),
    (b'{"format": "something-else"}', "neither a chatsite JSON export nor ChatGPT"),
    (b'{"format": "chatsite-export", "version": 99, "conversations": []}', "version 99"),
    (b'{"format": "chatsite-export", "version": 1, "conversations": []}', "holds no conversations"),
    (
        json.dumps(
            {
                "format": "chatsite-export",
                "version": 1,
                "conversations": [
                    {"title": "ok", "model": "m", "messages": [{"role": "user", "content": "fine"}]},
                    {"title": "bad", "model": "m", "messages": [{"role": "user", "content": "x", "parent": 5}]},
                ],
            }
        ).encode(),
        "Conversation 2, message 1: parent must be the index of an earlier message",
    ),
    (
        json.dumps(
            {
                "format": "chatsite-export",
                "version": 1,
                "conversations": [{"title": "t", "model": "m", "params": {"temperature": 9}, "messages": []}],
            }
        ).encode(),
        "temperature must be a number from 0.0 to 2.0",
    ),
    (
        json.dumps([{"title": "loop", "mapping": {"a": {"parent": None, "children": ["a"]}}}]).encode(),
        "appears twice",
    ),
    (
        json.dumps([{**CHATGPT[0], "mapping": {**CHATGPT[0]["mapping"], "u1": {"children": ["zz"]}}}]).encode(),
        "missing from the mapping",
    ),
]


@pytest.mark.parametrize(("content", "error"), BROKEN)
def test_a_broken_file_gets_a_clear_error_and_changes_nothing(alice, branched, client_alice, content, error):
    before = _snapshot()

    response = _upload(client_alice, content)

    assert response.status_code == 422
    assert error in response.content.decode().replace("&#x27;", "'").replace("&quot;", '"')
    assert _snapshot() == before


def test_an_oversized_file_is_refused_before_it_is_read(alice, client_alice, settings):
    settings.CHAT_IMPORT_MAX_BYTES = 100
    before = _snapshot()

    response = _upload(client_alice, json.dumps(CHATGPT).encode())

    assert response.status_code == 422
    assert "the limit is 100 bytes" in response.content.decode()
    assert _snapshot() == before


def test_a_failure_while_storing_rolls_back_every_conversation(alice, client_alice, monkeypatch):
    from conversations import services

    two = {
        "format": "chatsite-export",
        "version": 1,
        "conversations": [
            {"title": "first", "model": "m", "messages": [{"role": "user", "content": "one"}]},
            {"title": "second", "model": "m", "messages": [{"role": "user", "content": "two"}]},
        ],
    }
    real_create = Conversation.objects.create
    calls = []

    def create_then_fail(**kwargs):
        calls.append(kwargs["title"])
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real_create(**kwargs)

    monkeypatch.setattr(Conversation.objects, "create", create_then_fail)

    with pytest.raises(RuntimeError):
        services.conversation_import(owner=alice, raw=json.dumps(two).encode())

    assert calls == ["first", "second"]
    assert not Conversation.objects.filter(owner=alice).exists()
