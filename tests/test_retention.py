"""apply_retention removes exactly what the periods say, in batches, and keeps the accounting."""

import json
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations.models import Conversation, Message, ShareLink
from retention import purge
from retention.models import GroupRetention, RetentionPolicy, RetentionRun
from retention.services import apply_retention
from usage.models import Usage

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def _days_ago(days: float):
    return NOW - timedelta(days=days)


def _chat(owner, title: str, *, updated_days: float, reply_status: str = "complete", **fields) -> Conversation:
    """A conversation last updated `updated_days` ago: a question, a reply with its usage row, and a share link."""
    conversation = Conversation.objects.create(owner=owner, title=title, model="m", **fields)
    question = Message.objects.create(conversation=conversation, role="user", content=f"{title}: question")
    reply = Message.objects.create(
        conversation=conversation, role="assistant", content=f"{title}: answer", parent=question, status=reply_status
    )
    Conversation.objects.filter(pk=conversation.pk).update(current_message=reply, updated_at=_days_ago(updated_days))
    Message.objects.filter(conversation=conversation).update(updated_at=_days_ago(updated_days))
    Usage.objects.create(user=owner, model="m", message=reply, status="complete", total_tokens=7)
    ShareLink.objects.create(conversation=conversation, token=uuid.uuid4().hex)
    conversation.refresh_from_db()
    return conversation


def _counts() -> dict:
    return {
        "conversations": Conversation.objects.count(),
        "messages": Message.objects.count(),
        "share_links": ShareLink.objects.count(),
        "usage": Usage.objects.count(),
        "usage_linked": Usage.objects.filter(message__isnull=False).count(),
    }


def _export(client, conversation: Conversation) -> dict:
    exported = json.loads(b"".join(client.get(f"/c/{conversation.pk}/export.json").streaming_content))
    del exported["exported_at"]
    return exported


def _everything() -> list:
    """Every row a run could touch, in full."""
    return [list(model.objects.order_by("pk").values()) for model in (Conversation, Message, ShareLink, Usage, Group)]


@pytest.fixture
def periods(settings):
    settings.RETENTION_CONVERSATION_DAYS = 30
    settings.RETENTION_TRASH_DAYS = 7
    settings.RETENTION_USAGE_CONTENT_DAYS = 0
    return settings


@pytest.fixture
def chats(alice, bob, periods):
    return {
        "old": _chat(alice, "old", updated_days=31),
        "recent": _chat(alice, "recent", updated_days=29),
        "archived_old": _chat(alice, "archived old", updated_days=45, archived_at=_days_ago(44)),
        "bobs_recent": _chat(bob, "bob recent", updated_days=1),
    }


def test_it_removes_the_conversations_past_the_period_and_nothing_else(client_alice, chats):
    recent = chats["recent"]
    link = recent.share_links.get()
    export_before = _export(client_alice, recent)
    before = _counts()

    run = apply_retention(now=NOW)

    assert set(Conversation.objects.values_list("title", flat=True)) == {"recent", "bob recent"}
    assert _counts() == {
        "conversations": before["conversations"] - 2,
        "messages": before["messages"] - 4,
        "share_links": before["share_links"] - 2,
        "usage": before["usage"],  # kept for accounting, without the link to what was said
        "usage_linked": before["usage_linked"] - 2,
    }
    assert (run.conversations, run.trash, run.messages, run.share_links) == (2, 0, 4, 2)
    assert run.finished_at and not run.error and not run.dry_run
    shared = client_alice.get(f"/s/{link.token}/")
    assert shared.status_code == 200 and b"recent: answer" in shared.content
    assert _export(client_alice, recent) == export_before


def test_the_usage_rows_of_removed_conversations_keep_their_accounting(alice, chats):
    old_reply = chats["old"].current_message_id

    apply_retention(now=NOW)

    kept = Usage.objects.filter(user=alice, message__isnull=True)  # the old and the archived old one
    assert [(row.model, row.status, row.total_tokens) for row in kept] == [("m", "complete", 7)] * 2
    assert not Message.objects.filter(pk=old_reply).exists()


def test_a_conversation_with_a_reply_being_written_is_kept(alice, chats):
    writing = _chat(alice, "writing", updated_days=60, reply_status="streaming")
    Message.objects.filter(conversation=writing, role="assistant").update(updated_at=NOW - timedelta(seconds=5))
    died = _chat(alice, "worker died", updated_days=60, reply_status="pending")  # untouched for 60 days: stale

    run = apply_retention(now=NOW)

    assert Conversation.objects.filter(pk=writing.pk).exists()
    assert not Conversation.objects.filter(pk=died.pk).exists()
    assert run.skipped_generating == 1


def test_a_dry_run_changes_nothing_and_counts_what_a_run_removes(chats, periods):
    periods.RETENTION_USAGE_CONTENT_DAYS = 1
    Conversation.objects.filter(pk=chats["recent"].pk).update(deleted_at=_days_ago(8))
    Usage.objects.update(created_at=_days_ago(2))  # of the four, only bob's stays linked until the unlinking
    before = _everything()

    dry = apply_retention(dry_run=True, now=NOW)

    assert _everything() == before
    real = apply_retention(now=NOW)
    counted = ("conversations", "trash", "messages", "share_links", "usage_unlinked")
    assert [getattr(dry, name) for name in counted] == [getattr(real, name) for name in counted] == [2, 1, 6, 3, 1]
    assert dry.dry_run and not real.dry_run


def test_the_trash_is_emptied_after_its_period_only(alice, chats):
    Conversation.objects.filter(pk=chats["recent"].pk).update(deleted_at=_days_ago(8))
    Conversation.objects.filter(pk=chats["bobs_recent"].pk).update(deleted_at=_days_ago(6))

    run = apply_retention(now=NOW)

    assert run.trash == 1
    assert set(Conversation.objects.values_list("title", flat=True)) == {"bob recent"}


def test_usage_rows_lose_their_message_after_the_usage_content_period(alice, chats, periods):
    periods.RETENTION_USAGE_CONTENT_DAYS = 10
    recent_reply = chats["recent"].current_message
    Usage.objects.filter(message=recent_reply).update(created_at=_days_ago(11))
    Usage.objects.filter(message=chats["bobs_recent"].current_message).update(created_at=_days_ago(9))

    run = apply_retention(now=NOW)

    assert run.usage_unlinked == 1
    assert Usage.objects.filter(message__isnull=False).get().message == chats["bobs_recent"].current_message
    recent_reply.refresh_from_db()  # the message itself stays in its conversation
    assert Usage.objects.count() == 4


def test_zero_keeps_everything(chats, periods):
    periods.RETENTION_CONVERSATION_DAYS = 0
    periods.RETENTION_TRASH_DAYS = 0
    Conversation.objects.update(deleted_at=_days_ago(400), updated_at=_days_ago(400))
    before = _everything()

    run = apply_retention(now=NOW)

    assert _everything() == before
    assert (run.conversations, run.trash) == (0, 0)


def test_the_admins_policy_wins_over_the_environment_and_blank_falls_back(chats, periods):
    policy = RetentionPolicy.objects.create(conversation_days=40, trash_days=None)

    apply_retention(now=NOW)
    assert set(Conversation.objects.values_list("title", flat=True)) == {"old", "recent", "bob recent"}

    policy.conversation_days = None
    policy.save()
    apply_retention(now=NOW)
    assert set(Conversation.objects.values_list("title", flat=True)) == {"recent", "bob recent"}


def test_a_group_period_replaces_the_sites_and_the_longest_group_wins(alice, bob, chats, django_user_model):
    carol = django_user_model.objects.create_user(username="carol", password="x")
    legal, short, forever = (Group.objects.create(name=name) for name in ("legal", "short", "forever"))
    GroupRetention.objects.create(group=legal, conversation_days=365)
    GroupRetention.objects.create(group=short, conversation_days=10)
    GroupRetention.objects.create(group=forever, conversation_days=0)
    alice.groups.add(legal, short)  # the longest, 365, applies: both of her old ones are kept
    bob.groups.add(short)  # 10 days instead of the site's 30
    carol.groups.add(short, forever)  # 0 beats every number
    bobs = _chat(bob, "bob 11 days", updated_days=11)
    carols = _chat(carol, "carol ancient", updated_days=3000)

    run = apply_retention(now=NOW)

    assert run.conversations == 1
    assert not Conversation.objects.filter(pk=bobs.pk).exists()
    assert Conversation.objects.filter(pk=carols.pk).exists()
    assert Conversation.objects.filter(owner=alice).count() == 3


def test_a_staged_import_is_left_to_the_import_cleanup(alice, chats):
    staged = _chat(alice, "staged", updated_days=90, import_batch=uuid.uuid4(), deleted_at=_days_ago(90))

    apply_retention(now=NOW)

    assert Conversation.objects.filter(pk=staged.pk).exists()


def test_it_deletes_in_batches_of_the_given_size(alice, chats):
    with CaptureQueriesContext(connection) as queries:
        run = apply_retention(now=NOW, batch_size=1)

    deletes = [q["sql"] for q in queries if q["sql"].startswith('DELETE FROM "conversations_conversation"')]
    assert run.conversations == 2 and len(deletes) == 2


def test_an_error_is_recorded_on_the_run_and_what_was_done_stays_done(chats, monkeypatch):
    real_delete = purge.delete
    calls = []

    def fail_on_the_trash(candidates, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real_delete(candidates, **kwargs)

    monkeypatch.setattr(purge, "delete", fail_on_the_trash)

    with pytest.raises(CommandError, match="disk full"):
        call_command("apply_retention", stdout=StringIO())

    run = RetentionRun.objects.get()
    assert run.error == "RuntimeError: disk full" and run.finished_at
    assert not Conversation.objects.filter(title="old").exists()


def test_the_command_prints_what_a_dry_run_would_remove(chats):
    out = StringIO()

    call_command("apply_retention", "--dry-run", stdout=out)

    text = out.getvalue()
    assert "Would remove 2 old conversation(s) and 0 from the trash (4 message(s), 2 share link(s))" in text
    assert "Dry run: nothing was changed." in text
    for name in ("old", "archived_old"):
        when = chats[name].updated_at.strftime("%Y-%m-%d")
        assert f"conversation {chats[name].pk} of alice: not updated since {when}" in text
    assert f"conversation {chats['recent'].pk} " not in text
    assert Conversation.objects.count() == 4


def test_a_dry_run_lists_twenty_conversations_unless_asked_for_all(alice, chats):
    for number in range(25):
        _chat(alice, f"ancient {number}", updated_days=100)
    short, full = StringIO(), StringIO()

    call_command("apply_retention", "--dry-run", stdout=short)
    call_command("apply_retention", "--dry-run", "--verbosity", "2", stdout=full)

    assert short.getvalue().count("  conversation ") == 20 and "… and more" in short.getvalue()
    assert full.getvalue().count("  conversation ") == 27 and "… and more" not in full.getvalue()


def test_the_command_refuses_a_batch_size_below_one(chats):
    with pytest.raises(CommandError, match="at least 1"):
        call_command("apply_retention", "--batch-size", "0", stdout=StringIO())
    assert not RetentionRun.objects.exists()


def test_the_admin_shows_the_last_run_and_what_it_removed(client_admin, chats):
    apply_retention(now=NOW)
    RetentionPolicy.objects.create(conversation_days=30)

    runs = client_admin.get("/admin/retention/retentionrun/")
    policy = client_admin.get(f"/admin/retention/retentionpolicy/{RetentionPolicy.objects.get().pk}/change/")

    assert runs.status_code == 200 and b"retention run" in runs.content.lower()
    assert policy.status_code == 200
    assert b"removed 2 old conversation(s), 0 from the trash, 4 message(s)" in policy.content
    assert client_admin.get("/admin/retention/retentionpolicy/add/").status_code == 403  # one row only
    assert client_admin.get("/admin/retention/retentionrun/add/").status_code == 403
    assert client_admin.get("/admin/retention/groupretention/add/").status_code == 200
