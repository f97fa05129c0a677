"""The prompt library: creating, editing and deleting prompts, sharing them, the picker's data, and
a prompt made a conversation's system prompt."""

import re

import pytest
from django.contrib.auth.models import Group, Permission

from conversations.models import Conversation
from prompts.models import Prompt
from tests.xss_corpus import PAYLOADS

pytestmark = pytest.mark.django_db

FIELDS = {"title": "Translate", "command": "translate", "body": "Into {{language}}: {{text}}", "audience": "personal"}


def _prompt(owner, command="translate", audience="personal", group=None, body="Into {{language}}: {{text}}"):
    return Prompt.objects.create(
        owner=owner, title=command.title(), command=command, body=body, audience=audience, group=group
    )


def _picker(client) -> list[dict]:
    response = client.get("/prompts/picker/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return response.json()["prompts"]


def test_it_creates_a_personal_prompt(client_alice, alice):
    response = client_alice.post("/prompts/", FIELDS)

    assert response.status_code == 302
    prompt = Prompt.objects.get()
    assert (prompt.owner, prompt.command, prompt.audience, prompt.group) == (alice, "translate", "personal", None)
    page = client_alice.get("/prompts/").content.decode()
    assert "/translate" in page and "Saved /translate" in page


def test_it_creates_through_htmx_and_answers_with_the_library_fragment(client_alice):
    response = client_alice.post("/prompts/", {**FIELDS, "command": "/Translate"}, htmx=True)

    assert response.status_code == 200
    text = response.content.decode()
    assert text.lstrip().startswith('<div id="prompt-library"') and "<html" not in text
    assert Prompt.objects.get().command == "translate"  # the slash and the capitals are the person's typing


@pytest.mark.parametrize(
    ("changes", "field_error"),
    [
        ({"command": "two words"}, "A command is 1 to 32"),
        ({"command": ""}, "This field is required"),
        ({"body": "Hello {{First name}}"}, "is not a variable"),
        ({"body": "   "}, "Write the prompt"),
        ({"title": "x" * 101}, "at most 100 characters"),
        ({"audience": "site"}, "Select a valid choice"),
        ({"audience": "everyone"}, "Select a valid choice"),
    ],
)
def test_a_bad_prompt_is_refused_with_the_reason_and_not_stored(client_alice, changes, field_error):
    response = client_alice.post("/prompts/", {**FIELDS, **changes}, htmx=True)

    assert response.status_code == 422
    assert field_error in response.content.decode()
    assert not Prompt.objects.exists()


def test_a_command_is_unique_in_its_audience_only(client_alice, alice, bob):
    _prompt(alice)
    _prompt(bob)  # another person's library: no clash

    again = client_alice.post("/prompts/", FIELDS, htmx=True)
    team = Group.objects.create(name="Team")
    alice.groups.add(team)
    shared = client_alice.post("/prompts/", {**FIELDS, "audience": "group", "group": team.pk}, htmx=True)

    assert again.status_code == 422 and "Your library already has a prompt /translate" in again.content.decode()
    assert shared.status_code == 200
    assert Prompt.objects.filter(command="translate").count() == 3


def test_it_edits_a_prompt(client_alice, alice):
    prompt = _prompt(alice)

    form = client_alice.get(f"/prompts/{prompt.pk}/edit/")
    response = client_alice.post(f"/prompts/{prompt.pk}/edit/", {**FIELDS, "title": "Übersetzen", "body": "{{x}}!"})

    assert form.status_code == 200 and "Into {{language}}: {{text}}" in form.content.decode()
    assert response.status_code == 302
    prompt.refresh_from_db()
    assert (prompt.title, prompt.body) == ("Übersetzen", "{{x}}!")


def test_a_refused_edit_changes_nothing(client_alice, alice):
    prompt = _prompt(alice)

    response = client_alice.post(f"/prompts/{prompt.pk}/edit/", {**FIELDS, "body": "{{Bad Name}}"})

    assert response.status_code == 422
    prompt.refresh_from_db()
    assert prompt.body == "Into {{language}}: {{text}}"


def test_it_deletes_a_prompt(client_alice, alice):
    prompt = _prompt(alice)

    response = client_alice.post(f"/prompts/{prompt.pk}/delete/", htmx=True)

    assert response.status_code == 200 and "Deleted /translate" in response.content.decode()
    assert not Prompt.objects.exists()
    assert client_alice.get(f"/prompts/{prompt.pk}/delete/").status_code == 405


@pytest.mark.parametrize("payload", [p for p in PAYLOADS if "<" in p][:8])
def test_a_hostile_body_is_stored_as_typed_and_shown_escaped(client_alice, payload):
    client_alice.post("/prompts/", {**FIELDS, "title": payload, "body": payload})

    prompt = Prompt.objects.get()
    assert (prompt.title, prompt.body) == (payload, payload)
    for page in (client_alice.get("/prompts/"), client_alice.get(f"/prompts/{prompt.pk}/edit/")):
        assert payload not in page.content.decode(), "a prompt's markup reached the page unescaped"
    assert _picker(client_alice)[0]["parts"] == [["text", payload]]  # JSON text, for textContent


def test_the_picker_gives_each_prompt_split_into_text_and_variables(client_alice, alice):
    _prompt(alice, body="Into {{language}}: {{text}} ({{language}})")

    [item] = _picker(client_alice)

    assert item["command"] == "translate" and item["audience"] == "Only me" and item["mine"] is True
    assert item["variables"] == ["language", "text"]
    assert item["parts"] == [["text", "Into "], ["var", "language"], ["text", ": "], ["var", "text"], ["text", " ("],
                             ["var", "language"], ["text", ")"]]  # fmt: skip


def test_only_people_allowed_share_with_everyone(client_alice, alice):
    refused = client_alice.post("/prompts/", {**FIELDS, "audience": "site"}, htmx=True)
    alice.user_permissions.add(Permission.objects.get(codename="share_site_wide"))
    allowed = client_alice.post("/prompts/", {**FIELDS, "audience": "site"}, htmx=True)

    assert refused.status_code == 422
    assert allowed.status_code == 200
    assert Prompt.objects.get().audience == "site"


def test_a_superuser_shares_with_everyone(client_admin, admin_user):
    assert client_admin.post("/prompts/", {**FIELDS, "audience": "site"}).status_code == 302
    assert Prompt.objects.get(audience="site").owner == admin_user


def test_sharing_with_a_group_needs_membership(client_alice, alice):
    team, other = Group.objects.create(name="Team"), Group.objects.create(name="Other")
    alice.groups.add(team)

    outside = client_alice.post("/prompts/", {**FIELDS, "audience": "group", "group": other.pk}, htmx=True)
    no_group = client_alice.post("/prompts/", {**FIELDS, "audience": "group"}, htmx=True)
    inside = client_alice.post("/prompts/", {**FIELDS, "audience": "group", "group": team.pk}, htmx=True)

    assert outside.status_code == 422 and "Select a valid choice" in outside.content.decode()
    assert no_group.status_code == 422 and "Choose the group" in no_group.content.decode()
    assert inside.status_code == 200
    assert Prompt.objects.get().group == team


def test_a_prompt_becomes_a_conversations_system_prompt_with_its_variables_filled(client_alice, alice):
    prompt = _prompt(alice, body="You answer in {{language}} only. <b>{{tone}}</b>")
    chat = Conversation.objects.create(owner=alice, model="mistralai/mistral-tiny", title="Trip")

    form = client_alice.get(f"/prompts/{prompt.pk}/system-prompt/?conversation={chat.pk}").content.decode()
    response = client_alice.post(
        f"/prompts/{prompt.pk}/system-prompt/",
        {"conversation": chat.pk, "var_language": "French", "var_tone": "<i>warm</i>"},
    )

    assert f'<option value="{chat.pk}" selected>Trip</option>' in form
    assert 'name="var_language"' in form and 'name="var_tone"' in form
    assert response.status_code == 302 and response["Location"] == f"/c/{chat.pk}/"
    chat.refresh_from_db()
    assert chat.system_prompt == "You answer in French only. <b><i>warm</i></b>"
    assert "<i>warm</i>" not in client_alice.get(f"/c/{chat.pk}/").content.decode()


def test_a_system_prompt_without_its_values_is_refused_and_changes_nothing(client_alice, alice):
    prompt = _prompt(alice)
    chat = Conversation.objects.create(owner=alice, model="m", system_prompt="Be brief.")

    response = client_alice.post(f"/prompts/{prompt.pk}/system-prompt/", {"conversation": chat.pk, "var_text": "x"})

    assert response.status_code == 422
    chat.refresh_from_db()
    assert chat.system_prompt == "Be brief."


def test_the_admin_lists_edits_and_refuses_a_malformed_prompt(client_admin, alice):
    prompt = _prompt(alice, audience="site")
    url = f"/admin/prompts/prompt/{prompt.pk}/change/"
    fields = {"owner": alice.pk, "title": "T", "command": "translate", "audience": "site", "group": ""}

    listed = client_admin.get("/admin/prompts/prompt/?q=translate")
    refused = client_admin.post(url, {**fields, "body": "{{Bad Name}}"})
    clash = client_admin.post("/admin/prompts/prompt/add/", {**fields, "body": "x"})
    saved = client_admin.post(url, {**fields, "body": "{{good}}"})

    assert listed.status_code == 200 and "/translate" in listed.content.decode()
    assert refused.status_code == 200 and "is not a variable" in refused.content.decode()
    assert clash.status_code == 200 and "The site already has a prompt with this command" in clash.content.decode()
    assert saved.status_code == 302
    assert Prompt.objects.get().body == "{{good}}"


def test_the_library_page_carries_no_inline_script(client_alice, alice):
    _prompt(alice)

    html = client_alice.get("/prompts/").content.decode()

    assert all(" src=" in tag for tag in re.findall(r"<script[^>]*>", html))
    assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", html), "an inline event handler attribute"


def test_the_library_and_the_picker_cost_the_same_queries_however_many_prompts(
    client_alice, alice, bob, django_assert_max_num_queries
):
    team = Group.objects.create(name="Team")
    alice.groups.add(team)

    def add(count: int, start: int) -> None:
        for i in range(start, start + count):
            _prompt(alice, command=f"mine{i}")
            _prompt(bob, command=f"team{i}", audience="group", group=team)
            _prompt(bob, command=f"site{i}", audience="site")

    add(2, 0)
    with django_assert_max_num_queries(12) as few:
        client_alice.get("/prompts/")
        client_alice.get("/prompts/picker/")
    add(20, 2)
    with django_assert_max_num_queries(len(few.captured_queries)):
        library = client_alice.get("/prompts/")
        picker = client_alice.get("/prompts/picker/")

    assert library.content.decode().count('class="prompt-item"') == 66
    assert len(picker.json()["prompts"]) == 66
