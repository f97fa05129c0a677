"""The chat header's panels that load when first opened, so a send does not render them.

The Settings panel's GET endpoint answers htmx with the form the panel held when the page rendered
it inline, and a browser without JavaScript (which follows the panel's link) with the chat page, the
panel open. A new chat's response also leaves out the ⋯ menu's actions (a page load holds them)."""

import re
import uuid

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory

from conversations.forms import ConversationSettingsForm
from conversations.models import Conversation

pytestmark = pytest.mark.django_db

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


def _chat(owner) -> Conversation:
    return Conversation.objects.create(
        owner=owner, model="mistralai/mistral-tiny", title="Plans", system_prompt="Be brief.", temperature=0.4
    )


def _inline_form(conversation: Conversation) -> str:
    """The form as the chat page rendered it inside the panel before it was loaded on demand."""
    request = RequestFactory().get("/")
    request.user = conversation.owner
    form = ConversationSettingsForm(instance=conversation, prefix="settings", user=conversation.owner)
    html = render_to_string(
        "conversations/_settings.html#settings-form", {"conversation": conversation, "settings_form": form}, request
    )
    return CSRF.sub("csrf", html).strip()


def test_it_leaves_the_form_out_of_the_chat_page_and_links_to_it(client_alice, alice):
    conversation = _chat(alice)

    html = client_alice.get(f"/c/{conversation.pk}/").content.decode()

    panel = html[html.index('id="settings"') : html.index("</details>", html.index('id="settings"'))]
    assert f'hx-get="/c/{conversation.pk}/settings/"' in panel and 'hx-trigger="toggle once"' in panel
    assert f'<a href="/c/{conversation.pk}/settings/">' in panel
    assert 'id="settings-form"' in panel, "the model picker's out-of-band copy of the form lands here"
    assert "Be brief." not in panel and "Save settings" not in panel


def test_it_answers_htmx_with_the_form_the_panel_held(client_alice, alice):
    conversation = _chat(alice)

    response = client_alice.get(f"/c/{conversation.pk}/settings/", htmx=True)

    assert response.status_code == 200
    assert "HX-Request" in response["Vary"]
    html = response.content.decode()
    assert CSRF.sub("csrf", html).strip() == _inline_form(conversation)
    assert "Be brief." in html and 'value="0.4"' in html and "<html" not in html


def test_without_javascript_it_shows_the_chat_page_with_the_settings_open(client_alice, alice):
    conversation = _chat(alice)

    response = client_alice.get(f"/c/{conversation.pk}/settings/")

    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    opening = html[html.index('id="settings"') : html.index(">", html.index('id="settings"'))]
    assert " open" in opening and "hx-get" not in opening
    assert CSRF.sub("csrf", html).count(_inline_form(conversation)) == 1


def test_a_refused_save_without_javascript_shows_its_error_in_the_open_panel(client_alice, alice):
    conversation = _chat(alice)

    response = client_alice.post(f"/c/{conversation.pk}/settings/", {"settings-temperature": "9"})

    html = response.content.decode()
    assert response.status_code == 422
    panel = html[html.index('id="settings"') : html.index("</details>", html.index('id="settings"'))]
    assert "less than or equal to 2" in panel and 'value="9"' in panel


@pytest.mark.parametrize("htmx", [False, True])
def test_it_is_a_404_for_a_stranger(client_bob, alice, htmx):
    conversation = _chat(alice)

    response = client_bob.get(f"/c/{conversation.pk}/settings/", htmx=htmx)

    assert response.status_code == 404
    assert b"Be brief." not in response.content


def test_it_is_a_404_for_a_chat_in_the_trash(client_alice, alice):
    conversation = _chat(alice)
    Conversation.objects.filter(pk=conversation.pk).update(deleted_at=conversation.updated_at)

    assert client_alice.get(f"/c/{conversation.pk}/settings/", htmx=True).status_code == 404


def test_a_sent_turn_renders_no_settings_form(client_alice, alice, upstream):
    conversation = _chat(alice)
    response = client_alice.post(f"/c/{conversation.pk}/messages/", {"content": "Hi"}, htmx=True)
    new_chat = client_alice.post("/c/", {"content": "A new chat"}, htmx=True)

    assert response.status_code == new_chat.status_code == 200
    for html in (response.content.decode(), new_chat.content.decode()):
        assert "Save settings" not in html and 'name="settings-system_prompt"' not in html
    assert 'id="settings"' in new_chat.content.decode(), "the new chat's header has the panel, to load"


def _header_actions(html: str) -> str:
    start = html.index('class="chat-settings__panel conversation-menu__panel--header">')
    panel = html[html.index(">", start) + 1 : html.index("</details>", start)].strip().removesuffix("</div>")
    return CSRF.sub("csrf", panel).strip()


def test_a_new_chats_response_loads_the_header_actions_when_opened(client_alice, alice, upstream):
    response = client_alice.post("/c/", {"content": "Plans", "client_id": str(uuid.uuid4())}, htmx=True)
    conversation = Conversation.objects.get(owner=alice)

    html = response.content.decode()
    menu = html[html.index('id="actions"') : html.index("</details>", html.index('id="actions"'))]
    assert f'hx-get="/c/{conversation.pk}/manage/?panel=header"' in menu and 'hx-trigger="toggle once"' in menu
    assert f'<a href="/c/{conversation.pk}/manage/">' in menu, "without JavaScript: the page that holds them"
    assert "Move to folder" not in menu


def test_the_header_actions_it_loads_are_those_of_the_page(client_alice, alice):
    conversation = _chat(alice)

    loaded = client_alice.get(f"/c/{conversation.pk}/manage/?panel=header", htmx=True)
    page = client_alice.get(f"/c/{conversation.pk}/").content.decode()

    assert loaded.status_code == 200
    assert CSRF.sub("csrf", loaded.content.decode()).strip() == _header_actions(page)
    assert f'id="rename-{conversation.pk}-header"' in loaded.content.decode()


def test_the_header_actions_are_a_404_for_a_stranger(client_bob, alice):
    conversation = _chat(alice)

    response = client_bob.get(f"/c/{conversation.pk}/manage/?panel=header", htmx=True)

    assert response.status_code == 404 and b"Plans" not in response.content
