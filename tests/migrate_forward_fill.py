"""Fill a database through the ORM of chatsite at the commit before the reshape (issue 14).

tests/test_migrate_forward.py copies this file into that old checkout and runs it there, so it
names that code's modules: an import rename of the reshape must not reach this file. The upstream
key to store comes from MIGRATE_FORWARD_SECRET, the codenames of the permissions a group is given
(on models of `conversations`) from the command line.
"""

import os
import sys
import uuid
from datetime import UTC, datetime, timedelta

import django

django.setup()

from django.contrib.admin.models import CHANGE, LogEntry  # noqa: E402
from django.contrib.auth.models import Group, Permission, User  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402

from conversations import keys, markdown  # noqa: E402
from conversations.models import (  # noqa: E402
    ChatModel,
    Conversation,
    Message,
    ProviderKey,
    ShareLink,
    Usage,
    UserQuota,
)

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # when the first question was asked

root = User.objects.create_superuser("root", "root@example.com", "root-password-0123")
alice = User.objects.create_user("alice", password="alice-password-0123")
carol = User.objects.create_user("carol", password="carol-password-0123", is_staff=True)
keepers = Group.objects.create(name="key keepers")
granted = Permission.objects.filter(content_type__app_label="conversations", codename__in=sys.argv[1:])
assert len(granted) == len(sys.argv[1:]), f"not all of {sys.argv[1:]} are permissions of conversations"
keepers.permissions.set(granted)
carol.groups.add(keepers)

# A tree: a question with two replies (Regenerate), and an edit of the question with its own reply.
chat = Conversation.objects.create(owner=alice, title="Tides", model="mistralai/mistral-tiny", temperature=0.4)
question = Message.objects.create(conversation=chat, role="user", content="Why are there tides?", created_at=T0)
replies = []
for n, text in enumerate(["The **Moon**'s pull.", "Gravity of the Moon and the Sun."], start=1):
    replies.append(
        Message.objects.create(
            conversation=chat,
            parent=question,
            role="assistant",
            content=text,
            content_html=markdown.render(text),
            html_version=markdown.VERSION,
            model="mistralai/mistral-tiny",
            finish_reason="stop",
            prompt_tokens=12,
            completion_tokens=6 * n,
            total_tokens=12 + 6 * n,
            latency_ms=800,
            first_token_ms=120,
            created_at=T0 + timedelta(seconds=n),
        )
    )
edit = Message.objects.create(
    conversation=chat, role="user", content="Why two tides a day?", client_id=uuid.uuid4(), created_at=T0
)
failed = Message.objects.create(
    conversation=chat, parent=edit, role="assistant", status="error", error_code="timeout", error="Too slow."
)
chat.current_message, chat.title_source = replies[1], question
chat.save()
Conversation.objects.create(owner=alice, title="Old", model="mistralai/mistral-tiny", archived_at=T0, pinned_at=T0)
ShareLink.objects.create(conversation=chat, token="share-token-0123456789abcdef", created_at=T0)

ChatModel.objects.create(model_id="acme/large", display_name="Acme Large", default_params={"temperature": 0.7})
key = ProviderKey(label="team key", base_url="http://127.0.0.1:9/v1")
keys.set_secret(key, os.environ["MIGRATE_FORWARD_SECRET"])
key.save()
key.users.add(alice)
key.groups.add(keepers)
UserQuota.objects.create(user=alice, daily_tokens=5000, monthly_tokens=None)
usage = Usage.objects.create(
    user=alice,
    key=key,
    key_label=key.label,
    model="mistralai/mistral-tiny",
    message=replies[0],
    prompt_tokens=12,
    completion_tokens=6,
    total_tokens=18,
    status="complete",
    created_at=T0,
)
Usage.objects.create(user=alice, key=None, model="mistralai/mistral-tiny", message=failed, status="error")

for obj in (key, usage):
    LogEntry.objects.create(
        user=root,
        content_type=ContentType.objects.get_for_model(obj),
        object_id=str(obj.pk),
        object_repr=str(obj),
        action_flag=CHANGE,
        change_message="[]",
    )

session = SessionStore()
session["_auth_user_id"] = str(carol.pk)
session.create()
