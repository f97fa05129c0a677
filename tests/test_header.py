"""The chat header and the page's workspace pieces: the model picker (the settings' model alone),
the system prompt badge, the models named in a new chat, message times, and the title watch."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import Conversation, Message
from providers.models import ChatModel

pytestmark = pytest.mark.django_db


@pytest.fixture
def models():
    return [
        ChatModel.objects.create(model_id="acme/large", display_name="Acme Large", context_window=8000),
        ChatModel.objects.create(model_id="acme/small", display_name="Acme Small", context_window=1000),
        ChatModel.objects.create(model_id="acme/retired", display_name="Acme Retired", enabled=False),
    ]


def _conversation(owner, **fields):
    return Conversation.objects.create(owner=owner, **{"model": "acme/large", "title": "Plans", **fields})


def test_the_header_shows_the_chats_model_among_the_offered_ones(client_alice, alice, models):
    conversation = _conversation(alice)

    html = client_alice.get(f"/c/{conversation.pk}/").content.decode()

    picker = html[html.index('id="model-picker"') : html.index("</form>", html.index('id="model-picker"'))]
    assert '<option value="acme/large" selected>Acme Large</option>' in picker
    assert '<option value="acme/small">Acme Small</option>' in picker
    assert "acme/retired" not in picker


def test_the_header_changes_the_model_and_the_settings_panel_follows(client_alice, alice, models):
    conversation = _conversation(alice, system_prompt="Be brief.", temperature=0.5)

    response = client_alice.post(f"/c/{conversation.pk}/model/", {"header-model": "acme/small"}, htmx=True)

    assert response.status_code == 200
    conversation.refresh_from_db()
    kept = (conversation.system_prompt, conversation.temperature)
    assert (conversation.model, kept) == ("acme/small", ("Be brief.", 0.5))
    html = response.content.decode()
    assert "The next replies come from acme/small." in html
    settings_form = html[html.index('id="settings-form"') :]
    assert 'hx-swap-oob="true"' in settings_form.split(">", 1)[0]
    assert '<option value="acme/small" selected>' in settings_form


@pytest.mark.parametrize(
    ("fields", "model", "error"),
    [
        ({}, "acme/retired", "Select a valid choice."),  # not offered
        ({"model": "acme/retired"}, "acme/retired", "Acme Retired has been turned off by an admin."),
        ({}, "nobody/else", "Select a valid choice."),
        ({"max_tokens": 4000}, "acme/small", "Acme Small reads at most 1,000 tokens, reply included."),
    ],
)
def test_a_model_the_settings_would_refuse_is_refused_and_changes_nothing(
    client_alice, alice, models, fields, model, error
):
    conversation = _conversation(alice, **fields)

    response = client_alice.post(f"/c/{conversation.pk}/model/", {"header-model": model}, htmx=True)

    assert response.status_code == 422
    assert error in response.content.decode()
    assert Conversation.objects.get(pk=conversation.pk).model == conversation.model


def test_without_htmx_the_picker_saves_and_goes_back(client_alice, alice, models):
    conversation = _conversation(alice)

    response = client_alice.post(f"/c/{conversation.pk}/model/", {"header-model": "acme/small"})

    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.model == "acme/small"


def test_another_persons_conversation_keeps_its_model(client_bob, alice, models):
    conversation = _conversation(alice)

    response = client_bob.post(f"/c/{conversation.pk}/model/", {"header-model": "acme/small"}, htmx=True)

    assert response.status_code == 404
    conversation.refresh_from_db()
    assert conversation.model == "acme/large"


def test_a_set_system_prompt_is_a_badge_with_its_text_escaped(client_alice, alice):
    conversation = _conversation(alice, system_prompt='<img src=x onerror="alert(1)"> Talk like a pirate.')

    html = client_alice.get(f"/c/{conversation.pk}/").content.decode()

    start = html.index('id="system-prompt-badge"')
    badge = html[start : html.index("</div>\n</div>", start)]
    assert ">System prompt</summary>" in badge
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; Talk like a pirate." in badge
    assert "<img" not in badge


def test_no_badge_without_a_system_prompt(client_alice, alice):
    conversation = _conversation(alice)

    html = client_alice.get(f"/c/{conversation.pk}/").content.decode()

    assert 'id="system-prompt-badge"' in html and ">System prompt</summary>" not in html


def test_saving_the_settings_updates_the_header(client_alice, alice, models):
    conversation = _conversation(alice)
    data = {"settings-model": "acme/small", "settings-system_prompt": "Answer in French."}

    response = client_alice.post(f"/c/{conversation.pk}/settings/", data, htmx=True)

    html = response.content.decode()
    assert response.status_code == 200 and "Saved." in html
    assert '<form id="model-picker"' in html and '<option value="acme/small" selected>' in html
    assert 'id="system-prompt-badge" class="system-prompt" hx-swap-oob="true"' in html
    assert "Answer in French." in html


def test_a_new_chat_names_the_models_one_may_use(client_alice, models):
    html = client_alice.get("/").content.decode()

    start = html.index('class="empty-state"')
    empty = html[start : html.index("</section>", start)]
    assert "Acme Large" in empty and "<code>acme/small</code>" in empty
    assert "Acme Retired" not in empty


def test_each_message_carries_its_time(client_alice, alice):
    conversation = _conversation(alice)
    moment = timezone.now().replace(microsecond=0) - timedelta(days=3)
    Message.objects.create(conversation=conversation, role="user", content="Hello", created_at=moment)

    html = client_alice.get(f"/c/{conversation.pk}/").content.decode()

    assert f'<time class="message__time" datetime="{timezone.localtime(moment).isoformat()}"' in html


# --- The title a model makes, without a reload -------------------------------------------


def _first_turn(owner, *, status=Message.Status.COMPLETE, finished_ago=0.0):
    question = "Tell me all about the history of the Roman Empire"
    conversation = _conversation(owner, title=question)
    asked = Message.objects.create(conversation=conversation, role="user", content=question)
    reply = Message.objects.create(conversation=conversation, role="assistant", content="Rome…", parent=asked)
    Message.objects.filter(pk=reply.pk).update(
        status=status, updated_at=timezone.now() - timedelta(seconds=finished_ago)
    )
    conversation.title_source = asked
    conversation.current_message = reply
    conversation.save()
    return conversation, asked, reply


def _title(client, conversation):
    return client.get(f"/c/{conversation.pk}/title/", htmx=True)


def test_while_the_title_may_come_the_page_asks_and_hears_nothing_yet(client_alice, alice, settings):
    settings.CHAT_AUTO_TITLE_MODEL = "title-model"
    conversation, _, _ = _first_turn(alice, status=Message.Status.STREAMING)

    page = client_alice.get(f"/c/{conversation.pk}/").content.decode()
    response = _title(client_alice, conversation)

    assert f'hx-get="/c/{conversation.pk}/title/" hx-trigger="every 1s"' in page
    assert response.status_code == 204


def test_once_the_model_made_the_title_the_header_and_sidebar_get_it_and_the_asking_ends(client_alice, alice, settings):
    settings.CHAT_AUTO_TITLE_MODEL = "title-model"
    conversation, _, reply = _first_turn(alice)
    Conversation.objects.filter(pk=conversation.pk).update(title="Roman Empire history", title_source=reply)

    response = _title(client_alice, conversation)

    assert response.status_code == 286
    html = response.content.decode()
    assert '<h1 id="chat-title" class="chat-header__title">Roman Empire history</h1>' in html
    assert f'<li id="conversation-{conversation.pk}" class="conversation-item" hx-swap-oob="true">' in html
    assert "data-title-watch" not in client_alice.get(f"/c/{conversation.pk}/").content.decode()


@pytest.mark.parametrize(
    ("title_model", "finished_ago", "renamed"),
    [("", 0, False), ("title-model", 31, False), ("title-model", 0, True)],
    ids=["no title model", "waited long enough", "renamed by the person"],
)
def test_when_no_title_will_come_the_asking_ends_with_the_title_as_it_is(
    client_alice, alice, settings, title_model, finished_ago, renamed
):
    settings.CHAT_AUTO_TITLE_MODEL = title_model
    conversation, _, _ = _first_turn(alice, finished_ago=finished_ago)
    if renamed:
        Conversation.objects.filter(pk=conversation.pk).update(title="Mine", title_source=None)
        conversation.refresh_from_db()

    page = client_alice.get(f"/c/{conversation.pk}/").content.decode()
    response = _title(client_alice, conversation)

    assert "data-title-watch" not in page
    assert response.status_code == 286
    assert f">{conversation.title}</h1>" in response.content.decode()


def test_the_title_watch_is_the_owners_only(client_bob, alice, settings):
    settings.CHAT_AUTO_TITLE_MODEL = "title-model"
    conversation, _, _ = _first_turn(alice, status=Message.Status.STREAMING)

    assert _title(client_bob, conversation).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_next_reply_comes_from_the_model_chosen_in_the_header(client_alice, alice, models, upstream):
    from tests.conftest import settle

    conversation = _conversation(alice)
    client_alice.post(f"/c/{conversation.pk}/model/", {"header-model": "acme/small"}, htmx=True)

    client_alice.post(f"/c/{conversation.pk}/messages/", {"content": "Hello"}, htmx=True)
    settle()

    assert [request.json["model"] for request in upstream.completion_requests] == ["acme/small"]
    assert conversation.messages.get(role="assistant").status == Message.Status.COMPLETE
