"""Who sees which prompt: a personal prompt is its owner's alone (404 to anyone else, for reads and
writes, and absent from their picker); a group prompt is read by the group's members only; a site
prompt is read by everyone and changed only by its owner and the admins."""

import pytest
from django.contrib.auth.models import Group, Permission

from conversations.models import Conversation
from prompts.models import Prompt

pytestmark = pytest.mark.django_db

EDIT = {"title": "Hijacked", "command": "hijack", "body": "pwned", "audience": "personal"}


def _prompt(owner, command, audience="personal", group=None):
    return Prompt.objects.create(owner=owner, title=f"{command} title", command=command, body="secret {{x}}",
                                 audience=audience, group=group)  # fmt: skip


def _commands(client) -> set[str]:
    return {item["command"] for item in client.get("/prompts/picker/").json()["prompts"]}


def _rows():
    return list(Prompt.objects.order_by("pk").values()), list(Conversation.objects.order_by("pk").values())


@pytest.fixture
def team(alice):
    group = Group.objects.create(name="Team")
    alice.groups.add(group)
    return group


def _answers(client, prompt, chat) -> list[int]:
    return [
        client.get(f"/prompts/{prompt.pk}/edit/").status_code,
        client.post(f"/prompts/{prompt.pk}/edit/", EDIT).status_code,
        client.post(f"/prompts/{prompt.pk}/delete/").status_code,
        client.post(f"/prompts/{prompt.pk}/delete/", htmx=True).status_code,
        client.get(f"/prompts/{prompt.pk}/system-prompt/").status_code,
        client.post(f"/prompts/{prompt.pk}/system-prompt/", {"conversation": chat.pk, "var_x": "y"}).status_code,
    ]


def test_a_personal_prompt_is_404_to_anyone_else_and_absent_from_their_picker(client_bob, alice, bob):
    prompt = _prompt(alice, "mine")
    bobs_chat = Conversation.objects.create(owner=bob, model="m")
    before = _rows()

    assert _answers(client_bob, prompt, bobs_chat) == [404] * 6
    assert _commands(client_bob) == set()
    assert "mine title" not in client_bob.get("/prompts/").content.decode()
    assert _rows() == before


def test_a_group_prompt_is_read_by_members_only(client_alice, client_bob, alice, bob, team):
    prompt = _prompt(alice, "teamwork", audience="group", group=team)

    assert _commands(client_bob) == set()
    assert client_bob.get(f"/prompts/{prompt.pk}/system-prompt/").status_code == 404
    bob.groups.add(team)
    assert _commands(client_bob) == {"teamwork"}
    assert "teamwork title" in client_bob.get("/prompts/").content.decode()
    assert client_bob.get(f"/prompts/{prompt.pk}/system-prompt/").status_code == 200
    # A member reads and uses it; only its owner (or an admin) changes it.
    assert client_bob.post(f"/prompts/{prompt.pk}/edit/", EDIT).status_code == 404
    assert client_bob.post(f"/prompts/{prompt.pk}/delete/").status_code == 404
    assert Prompt.objects.get(pk=prompt.pk).title == "teamwork title"
    bob.groups.remove(team)
    assert _commands(client_bob) == set()


def test_a_site_prompt_is_read_by_everyone_and_changed_by_its_owner_and_admins(
    client_alice, client_bob, client_admin, alice, bob
):
    prompt = _prompt(alice, "everyone", audience="site")
    bobs_chat = Conversation.objects.create(owner=bob, model="m")

    assert _commands(client_bob) == {"everyone"}
    used = client_bob.post(f"/prompts/{prompt.pk}/system-prompt/", {"conversation": bobs_chat.pk, "var_x": "y"})
    assert used.status_code == 302
    assert Conversation.objects.get(pk=bobs_chat.pk).system_prompt == "secret y"
    before = _rows()
    assert _answers(client_bob, prompt, bobs_chat)[:4] == [404] * 4
    assert _rows() == before

    # Its owner keeps it site-wide without the permission to make one; an admin edits and deletes it.
    kept = client_alice.post(f"/prompts/{prompt.pk}/edit/", {**EDIT, "audience": "site"})
    assert kept.status_code == 302 and Prompt.objects.get(pk=prompt.pk).audience == "site"
    assert client_admin.post(f"/prompts/{prompt.pk}/edit/", {**EDIT, "audience": "site"}).status_code == 302
    edited = Prompt.objects.get(pk=prompt.pk)
    assert (edited.title, edited.owner) == ("Hijacked", alice)
    assert client_admin.post(f"/prompts/{prompt.pk}/delete/").status_code == 302
    assert not Prompt.objects.exists()


def test_a_staff_member_with_the_change_permission_edits_shared_prompts_not_personal_ones(client_bob, alice, bob):
    bob.is_staff = True
    bob.save()
    bob.user_permissions.add(Permission.objects.get(codename="change_prompt"))
    shared, personal = _prompt(alice, "everyone", audience="site"), _prompt(alice, "private")

    assert client_bob.get(f"/prompts/{shared.pk}/edit/").status_code == 200
    assert client_bob.get(f"/prompts/{personal.pk}/edit/").status_code == 404
    assert client_bob.post(f"/prompts/{shared.pk}/delete/").status_code == 404  # deleting is its own permission


def test_a_system_prompt_only_goes_to_ones_own_conversation(client_bob, alice, bob):
    prompt = _prompt(alice, "everyone", audience="site")
    alices_chat = Conversation.objects.create(owner=alice, model="m", system_prompt="Alice's own")
    Conversation.objects.create(owner=bob, model="m", title="Bob's")

    response = client_bob.post(f"/prompts/{prompt.pk}/system-prompt/", {"conversation": alices_chat.pk, "var_x": "y"})
    listed = client_bob.get(f"/prompts/{prompt.pk}/system-prompt/?conversation={alices_chat.pk}")

    assert response.status_code == 422 and "Select a valid choice" in response.content.decode()
    assert Conversation.objects.get(pk=alices_chat.pk).system_prompt == "Alice's own"
    assert f'value="{alices_chat.pk}"' not in listed.content.decode()


def test_signed_out_visitors_are_sent_to_sign_in(anon_client, alice):
    prompt = _prompt(alice, "everyone", audience="site")

    for url in ("/prompts/", "/prompts/picker/", f"/prompts/{prompt.pk}/system-prompt/"):
        response = anon_client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
