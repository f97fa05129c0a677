"""Folders: create, rename, delete, file a chat, the sidebar's folders, search in a folder, export and import,
and another person's folder (404, nothing changes)."""

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations import services
from conversations.folders import FOLDER_PREVIEW
from conversations.models import Conversation, Folder, Message

pytestmark = pytest.mark.django_db


def _chat(owner, title, *, folder=None, content="hello there"):
    conversation = Conversation.objects.create(owner=owner, model="m", title=title, folder=folder)
    Message.objects.create(conversation=conversation, role="user", content=content)
    return conversation


def _folder_items(html: str, folder: Folder) -> list[str]:
    """The titles listed under the folder in a sidebar's HTML."""
    section = re.search(rf'<details class="folder" id="folder-{folder.pk}".*?</ul>', html, re.S)[0]
    return re.findall(r'<a href="/c/\d+/"[^>]*>(?:<span[^>]*>★</span> )?([^<]+)</a>', section)


def _main_items(html: str) -> list[str]:
    """The titles of the main list (under the folders) in a sidebar's HTML."""
    main = html.split('<ul data-drop-folder="">', 1)[1].split("</ul>", 1)[0]
    return re.findall(r'<a href="/c/\d+/"[^>]*>([^<]+)</a>', main)


def test_it_creates_a_folder_and_shows_it_in_the_sidebar(client_alice, alice):
    response = client_alice.post("/folders/", {"name": "  Work   notes "}, htmx=True)

    assert response.status_code == 200
    folder = Folder.objects.get(owner=alice)
    assert folder.name == "Work notes"
    assert f'id="folder-{folder.pk}"' in response.content.decode()


@pytest.mark.parametrize(
    ("name", "reason"),
    [("", "Give the folder a name"), ("   ", "Give the folder a name"), ("x" * 61, "at most 60")],
)
def test_a_bad_folder_name_is_refused_with_the_reason(client_alice, alice, name, reason):
    response = client_alice.post("/folders/", {"name": name}, htmx=True)

    assert response.status_code == 422
    assert reason in response.content.decode()
    assert not Folder.objects.exists()


def test_a_name_already_used_is_refused_on_create_and_rename(client_alice, alice):
    Folder.objects.create(owner=alice, name="Work")
    other = Folder.objects.create(owner=alice, name="Home")

    created = client_alice.post("/folders/", {"name": "Work"}, htmx=True)
    renamed = client_alice.post(f"/folders/{other.pk}/rename/", {"name": "Work"}, htmx=True)

    assert created.status_code == renamed.status_code == 422
    assert "already have a folder named “Work”" in renamed.content.decode()
    assert sorted(Folder.objects.values_list("name", flat=True)) == ["Home", "Work"]


def test_another_person_may_use_the_same_name(alice, bob):
    services.folder_create(owner=alice, name="Work")

    assert services.folder_create(owner=bob, name="Work").owner == bob


def test_it_renames_a_folder(client_alice, alice):
    folder = Folder.objects.create(owner=alice, name="Wrok")

    response = client_alice.post(f"/folders/{folder.pk}/rename/", {"name": "Work"}, htmx=True)

    assert response.status_code == 200
    folder.refresh_from_db()
    assert folder.name == "Work"


def test_deleting_a_folder_keeps_its_chats_in_the_main_list(client_alice, alice):
    folder = Folder.objects.create(owner=alice, name="Work")
    chat = _chat(alice, "Quarterly plan", folder=folder)

    response = client_alice.post(f"/folders/{folder.pk}/delete/", htmx=True)

    assert response.status_code == 200
    assert not Folder.objects.exists()
    chat.refresh_from_db()
    assert chat.folder is None and chat.deleted_at is None
    assert _main_items(response.content.decode()) == ["Quarterly plan"]


def test_moving_a_chat_files_it_under_its_folder_and_out_of_the_main_list(client_alice, alice):
    folder = Folder.objects.create(owner=alice, name="Work")
    chat = _chat(alice, "Quarterly plan")
    _chat(alice, "Holiday")

    response = client_alice.post(f"/c/{chat.pk}/folder/", {"folder": folder.pk}, htmx=True)

    assert response.status_code == 200
    chat.refresh_from_db()
    assert chat.folder == folder
    html = client_alice.get("/").content.decode()
    assert _folder_items(html, folder) == ["Quarterly plan"]
    assert _main_items(html) == ["Holiday"]


def test_moving_to_no_folder_takes_it_out(client_alice, alice):
    folder = Folder.objects.create(owner=alice, name="Work")
    chat = _chat(alice, "Quarterly plan", folder=folder)

    response = client_alice.post(f"/c/{chat.pk}/folder/", {"folder": ""}, htmx=True)

    assert response.status_code == 200
    chat.refresh_from_db()
    assert chat.folder is None


def test_a_plain_move_form_redirects_back(client_alice, alice):
    folder = Folder.objects.create(owner=alice, name="Work")
    chat = _chat(alice, "Quarterly plan")

    response = client_alice.post(f"/c/{chat.pk}/folder/", {"folder": folder.pk, "next": f"/c/{chat.pk}/"})

    assert response.status_code == 302
    chat.refresh_from_db()
    assert chat.folder == folder


def test_a_damaged_move_form_is_refused_and_changes_nothing(client_alice, alice):
    chat = _chat(alice, "Quarterly plan")

    response = client_alice.post(f"/c/{chat.pk}/folder/", {"folder": "abc"}, htmx=True)

    assert response.status_code == 422
    assert "Choose one of your folders" in response.content.decode()
    chat.refresh_from_db()
    assert chat.folder is None


def test_the_menu_offers_every_folder_and_marks_the_current_one(client_alice, alice):
    work = Folder.objects.create(owner=alice, name="Work")
    Folder.objects.create(owner=alice, name="Home")
    chat = _chat(alice, "Quarterly plan", folder=work)

    menu = client_alice.get(f"/c/{chat.pk}/manage/", htmx=True).content.decode()
    header = client_alice.get(f"/c/{chat.pk}/").content.decode()

    for html in (menu, header):
        assert "Move to folder" in html
        assert f'<option value="{work.pk}" selected>Work</option>' in html
        assert ">Home</option>" in html


def test_a_collapsed_folder_is_remembered(client_alice, alice):
    folder = Folder.objects.create(owner=alice, name="Work")

    closed = client_alice.post(f"/folders/{folder.pk}/collapse/", {"collapsed": "1"}, htmx=True)
    html_closed = client_alice.get("/").content.decode()
    client_alice.post(f"/folders/{folder.pk}/collapse/", {"collapsed": "0"}, htmx=True)
    html_open = client_alice.get("/").content.decode()

    assert closed.status_code == 204
    tag = re.compile(rf'<details class="folder" id="folder-{folder.pk}"[^>]*>')
    assert " open" not in tag.search(html_closed)[0]
    assert tag.search(html_open)[0].endswith(" open>")


def test_a_long_folder_shows_its_newest_chats_and_lists_the_rest_page_by_page(client_alice, alice):
    folder = Folder.objects.create(owner=alice, name="Work")
    for number in range(FOLDER_PREVIEW + 5):
        _chat(alice, f"Work {number}", folder=folder)

    html = client_alice.get("/").content.decode()
    listing = client_alice.get(f"/?folder={folder.pk}").content.decode()

    assert len(_folder_items(html, folder)) == FOLDER_PREVIEW
    assert _folder_items(html, folder)[0] == f"Work {FOLDER_PREVIEW + 4}"
    assert f"/?folder={folder.pk}" in html
    assert "Folder “Work”" in listing
    assert len(_main_items(listing)) == FOLDER_PREVIEW + 5


@pytest.mark.parametrize("folders", [1, 8])
def test_the_sidebar_costs_the_same_queries_however_many_folders(alice, client_alice, folders):
    for number in range(folders):
        folder = Folder.objects.create(owner=alice, name=f"Folder {number}")
        for chat in range(3):
            _chat(alice, f"Chat {number}.{chat}", folder=folder)
    client_alice.get("/")

    with CaptureQueriesContext(connection) as queries:
        response = client_alice.get("/")

    assert response.status_code == 200
    # user, pinned, folders, their chats (one query for all), one page, temporary chats left
    ours = [query["sql"] for query in queries if "django_session" not in query["sql"]]
    assert len(ours) == 6, "\n".join(sql[:90] for sql in ours)


def test_search_can_be_limited_to_a_folder(client_alice, alice):
    work = Folder.objects.create(owner=alice, name="Work")
    _chat(alice, "Filed", folder=work, content="banana budget")
    _chat(alice, "Loose", content="banana bread")

    everywhere = client_alice.get("/c/list/?q=banana", htmx=True).content.decode()
    in_work = client_alice.get(f"/c/list/?q=banana&folder={work.pk}", htmx=True).content.decode()

    assert "Filed" in everywhere and "Loose" in everywhere
    assert "Filed" in in_work and "Loose" not in in_work


def test_export_and_import_carry_folders_by_name(client_alice, client_bob, alice, bob):
    work = Folder.objects.create(owner=alice, name="Work")
    _chat(alice, "Filed", folder=work)
    _chat(alice, "Loose")
    Folder.objects.create(owner=bob, name="Work")  # bob's own "Work" is reused, not doubled

    exported = b"".join(client_alice.get("/history/export.json").streaming_content)
    data = json.loads(exported)
    services.conversation_import(owner=bob, raw=exported)

    assert {item["title"]: item["folder"] for item in data["conversations"]} == {"Filed": "Work", "Loose": None}
    assert Folder.objects.filter(owner=bob).count() == 1
    assert dict(Conversation.objects.filter(owner=bob).values_list("title", "folder__name")) == {
        "Filed": "Work",
        "Loose": None,
    }


def test_import_creates_missing_folders_and_a_failed_import_leaves_none(alice):
    good = {"title": "A", "model": "m", "folder": "Recipes", "messages": []}
    bad = {"title": "B", "model": "m", "folder": "Broken", "messages": [{"role": "nobody"}]}
    raw = json.dumps({"format": "chatsite-export", "version": 1, "conversations": [good]}).encode()
    broken = json.dumps({"format": "chatsite-export", "version": 1, "conversations": [good, bad]}).encode()

    with pytest.raises(services.ChatError):
        services.conversation_import(owner=alice, raw=broken)
    assert not Folder.objects.exists()
    services.conversation_import(owner=alice, raw=raw)

    assert Conversation.objects.get(owner=alice).folder.name == "Recipes"


def test_an_import_with_a_folder_name_too_long_is_refused(alice):
    item = {"title": "A", "model": "m", "folder": "x" * 61, "messages": []}
    raw = json.dumps({"format": "chatsite-export", "version": 1, "conversations": [item]}).encode()

    with pytest.raises(services.ChatError, match="folder: longer than 60"):
        services.conversation_import(owner=alice, raw=raw)
    assert not Conversation.objects.exists()


# --- Another person's folder -------------------------------------------------------------


def test_another_persons_folder_is_404_and_nothing_changes(client_bob, alice, bob):
    folder = Folder.objects.create(owner=alice, name="Alice's secret folder")
    bobs_chat = _chat(bob, "Bob's chat")

    answers = [
        client_bob.post(f"/folders/{folder.pk}/rename/", {"name": "pwned"}, htmx=True),
        client_bob.post(f"/folders/{folder.pk}/delete/", htmx=True),
        client_bob.post(f"/folders/{folder.pk}/collapse/", {"collapsed": "1"}, htmx=True),
        client_bob.post(f"/c/{bobs_chat.pk}/folder/", {"folder": folder.pk}, htmx=True),
        client_bob.get(f"/?folder={folder.pk}"),
        client_bob.get(f"/c/list/?q=secret&folder={folder.pk}", htmx=True),
    ]

    assert [answer.status_code for answer in answers] == [404] * len(answers)
    assert all(b"secret" not in answer.content for answer in answers)
    folder.refresh_from_db()
    bobs_chat.refresh_from_db()
    assert (folder.name, folder.collapsed) == ("Alice's secret folder", False)
    assert bobs_chat.folder is None


def test_another_persons_chats_never_appear_in_my_folders(client_bob, alice, bob):
    alices = Folder.objects.create(owner=alice, name="Work")
    _chat(alice, "Alice's plan", folder=alices)
    bobs = Folder.objects.create(owner=bob, name="Work")

    html = client_bob.get("/").content.decode()

    assert _folder_items(html, bobs) == []
    assert "Alice's plan" not in html and f"folder-{alices.pk}" not in html
