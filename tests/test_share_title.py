"""A share link's title: taken from the shared branch (or the owner's own), announced in the share dialog."""

import re
from importlib import import_module

import pytest
from django.apps import apps

from conversations import services
from conversations.models import Conversation, Message, ShareLink, title_from
from tests.conftest import settle

pytestmark = pytest.mark.django_db(transaction=True)

ORIGINAL = "Original question about my secret project"
EDITED = "Edited question about gardening"


def _start(client, content=ORIGINAL) -> Conversation:
    client.post("/c/", {"content": content}, htmx=True)
    settle()
    return Conversation.objects.latest("id")


def _first_question(conversation) -> Message:
    return conversation.messages.filter(role="user").earliest("id")


def _edit(client, conversation, message, content) -> str:
    response = client.post(f"/c/{conversation.pk}/messages/{message.pk}/edit/", {"content": content}, htmx=True)
    settle()
    assert response.status_code == 200
    return response.content.decode()


def _shared_html(client, anon_client, conversation) -> str:
    client.post(f"/c/{conversation.pk}/share/", htmx=True)
    link = ShareLink.objects.get(conversation=conversation, revoked_at__isnull=True)
    response = anon_client.get(link.get_absolute_url())
    assert response.status_code == 200
    return response.content.decode()


def _titles(html) -> tuple[str, str]:
    title = re.search(r"<title>(.*?) · shared from chatsite</title>", html).group(1)
    heading = re.search(r"<h1>(.*?)</h1>", html).group(1)
    return title, heading


def _dialog_title(html) -> str:
    return re.search(r"Title on the shared page: “(.*?)”", html).group(1)


def test_a_share_link_of_an_edited_first_question_shows_nothing_of_the_original(
    client_alice, anon_client, alice, upstream
):
    conversation = _start(client_alice)
    _edit(client_alice, conversation, _first_question(conversation), EDITED)

    html = _shared_html(client_alice, anon_client, conversation)

    assert _titles(html) == (EDITED, EDITED)
    assert "secret project" not in html, "nothing from the edited-away branch"
    assert f"Echo: {EDITED}" in html


def test_the_share_dialog_announces_the_title_the_shared_page_will_show(client_alice, alice, upstream):
    conversation = _start(client_alice)
    page = client_alice.get(conversation.get_absolute_url()).content.decode()
    assert _dialog_title(page) == ORIGINAL

    edited = _edit(client_alice, conversation, _first_question(conversation), EDITED)

    assert _dialog_title(edited) == EDITED, "the Edit's response updates the open dialog"
    assert 'id="share-panel" class="share-panel" hx-swap-oob="true"' in edited
    assert _dialog_title(client_alice.get(conversation.get_absolute_url()).content.decode()) == EDITED
    created = client_alice.post(f"/c/{conversation.pk}/share/", htmx=True).content.decode()
    assert _dialog_title(created) == EDITED


def test_switching_back_to_the_original_branch_shares_its_title_again(client_alice, anon_client, alice, upstream):
    conversation = _start(client_alice)
    original = _first_question(conversation)
    _edit(client_alice, conversation, original, EDITED)

    client_alice.post(f"/c/{conversation.pk}/messages/{original.pk}/show/", htmx=True)

    assert _titles(_shared_html(client_alice, anon_client, conversation)) == (ORIGINAL, ORIGINAL)


def test_the_owners_own_title_is_shared_whatever_the_branch(client_alice, anon_client, alice, upstream):
    conversation = _start(client_alice)
    client_alice.post(f"/c/{conversation.pk}/rename/", {"title": "Chosen by me"}, htmx=True)
    _edit(client_alice, conversation, _first_question(conversation), EDITED)

    assert _titles(_shared_html(client_alice, anon_client, conversation)) == ("Chosen by me", "Chosen by me")


def test_a_model_made_title_is_not_shared_once_its_reply_is_regenerated_away(
    client_alice, anon_client, alice, upstream, settings
):
    settings.CHAT_AUTO_TITLE_MODEL = "title-model"
    upstream.reply("The project is called Nightingale.")
    upstream.reply("Project Nightingale plans")  # the title, made from the question and that reply
    conversation = _start(client_alice, "What is my project called?")
    conversation.refresh_from_db()
    assert conversation.title == "Project Nightingale plans"
    first_reply = conversation.messages.get(role="assistant")
    upstream.reply("I cannot know that.")

    client_alice.post(f"/c/{conversation.pk}/messages/{first_reply.pk}/regenerate/", htmx=True)
    settle()
    html = _shared_html(client_alice, anon_client, conversation)

    assert _titles(html) == ("What is my project called?", "What is my project called?")
    assert "Nightingale" not in html


def test_the_shared_page_names_the_models_that_answered_on_the_branch(client_alice, anon_client, alice, upstream):
    conversation = _start(client_alice)
    answered_by = conversation.messages.get(role="assistant").model
    Conversation.objects.filter(pk=conversation.pk).update(model="another/model-set-later")

    html = _shared_html(client_alice, anon_client, conversation)

    assert f"with <code>{answered_by}</code>." in html
    assert "another/model-set-later" not in html


def test_the_migration_finds_which_titles_were_made_from_the_first_question(alice):
    made = Conversation.objects.create(owner=alice, model="m", title="How do I water ferns")
    question = Message.objects.create(conversation=made, role="user", content="How do I   water\nferns")
    renamed = Conversation.objects.create(owner=alice, model="m", title="Ferns")
    Message.objects.create(conversation=renamed, role="user", content="How do I water ferns")
    untitled = Conversation.objects.create(owner=alice, model="m")
    long_question = "Tell me everything about the care of ferns in a north-facing flat in winter " * 2
    cut = Conversation.objects.create(owner=alice, model="m", title=title_from(long_question))
    cut_question = Message.objects.create(conversation=cut, role="user", content=long_question)
    migration = import_module("conversations.migrations.0009_share_title")

    migration.find_title_sources(apps, None)

    for conversation in (made, renamed, untitled, cut):
        conversation.refresh_from_db()
    assert made.title_source_id == question.pk
    assert cut.title.endswith("…") and cut.title_source_id == cut_question.pk
    assert renamed.title_source_id is None and untitled.title_source_id is None


def test_an_imported_automatic_title_follows_the_shared_branch_too(client_alice, anon_client, alice, upstream):
    exported = _start(client_alice)
    _edit(client_alice, exported, _first_question(exported), EDITED)
    raw = b"".join(client_alice.get(f"/c/{exported.pk}/export.json").streaming_content)

    (imported,) = services.conversation_import(owner=alice, raw=raw)

    assert imported.title == ORIGINAL
    html = _shared_html(client_alice, anon_client, imported)
    assert _titles(html) == (EDITED, EDITED)
    assert "secret project" not in html
