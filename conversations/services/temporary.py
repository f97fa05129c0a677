"""Temporary chats: deleted, with their messages, when their owner leaves them or after TEMPORARY_CHAT_HOURS.

Leaving is explicit: opening another chat or a new one, or signing out (a reload of the same
chat keeps it). A chat whose reply is still being written is never deleted: leaving hides it
at once (as the trash does) and it is deleted once the reply is finished, at its owner's next
page or by `purge_trash` (run from cron). Usage rows stay, with their message link null.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from conversations.generation import live
from conversations.models import Conversation, Message


def _writing():
    """Whether a conversation (OuterRef) has a reply being written: unfinished and touched recently, or
    still in this process's hands (its usage row and title are written just after its final save)."""
    recent = timezone.now() - Message.stale_after()
    unfinished = Q(status__in=Message.IN_PROGRESS, updated_at__gte=recent)
    with live.running_lock:
        here = list(live.running)
    return Exists(Message.objects.filter(unfinished | Q(pk__in=here), conversation=OuterRef("pk")))


def _delete(conversations) -> int:
    """Delete the conversations (a queryset of temporary ones) that have no reply being written; returns how many."""
    deleted = 0
    for conversation in conversations.annotate(writing=_writing()).filter(writing=False).only("pk").iterator():
        with transaction.atomic():
            Conversation.objects.filter(pk=conversation.pk).update(current_message=None, title_source=None)
            conversation.delete()
        deleted += 1
    return deleted


def temporary_chats_leave(*, owner, staying: Conversation | None = None) -> int:
    """The owner left their temporary chats (but `staying`, the one being opened): delete them, or hide those
    whose reply is still being written until it is finished. Returns how many were deleted."""
    left = Conversation.objects.filter(owner=owner, temporary=True)
    if staying is not None:
        left = left.exclude(pk=staying.pk)
    ids = list(left.values_list("pk", flat=True))
    if not ids:
        return 0
    chats = Conversation.objects.filter(pk__in=ids)
    chats.filter(deleted_at__isnull=True).update(deleted_at=timezone.now())
    return _delete(chats)


def temporary_chats_purge() -> int:
    """Delete the temporary chats left (hidden) or idle for TEMPORARY_CHAT_HOURS, unless a reply is being
    written in them; returns how many."""
    cutoff = timezone.now() - timedelta(hours=settings.TEMPORARY_CHAT_HOURS)
    expired = Conversation.objects.filter(temporary=True, deleted_at__isnull=False) | Conversation.objects.filter(
        temporary=True, updated_at__lt=cutoff
    )
    return _delete(expired)
