"""Organising conversations: settings, titles, pins, the archive, and the trash (delete with Undo)."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from conversations.models import TITLE_LENGTH, Conversation, ShareLink
from conversations.services.errors import ChatError
from conversations.services.importing import conversation_import_cleanup


def conversation_update_settings(*, conversation: Conversation, settings: dict) -> Conversation:
    """Store a conversation's model, system prompt and generation parameters."""
    for name, value in settings.items():
        setattr(conversation, name, value)
    conversation.save(update_fields=list(settings))
    return conversation


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    """Give a conversation a title of the person's choosing (blank shows "New chat")."""
    title = " ".join(title.split())
    if len(title) > TITLE_LENGTH:
        raise ChatError(f"A title can have at most {TITLE_LENGTH} characters.")
    conversation.title = title
    conversation.title_source = None  # the owner's own: shown as it is, on a share link too
    conversation.save(update_fields=["title", "title_source"])
    return conversation


def conversation_pin(*, conversation: Conversation, pinned: bool) -> Conversation:
    """Pin a conversation to the top of the sidebar, or unpin it."""
    conversation.pinned_at = timezone.now() if pinned else None
    conversation.save(update_fields=["pinned_at"])
    return conversation


def conversation_archive(*, conversation: Conversation, archived: bool) -> Conversation:
    """Move a conversation out of the sidebar into the archive (still searchable), or back."""
    conversation.archived_at = timezone.now() if archived else None
    if archived:
        conversation.pinned_at = None
    conversation.save(update_fields=["archived_at", "pinned_at"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> Conversation:
    """Move a conversation to the trash: gone from every page at once, restorable until purged.

    Its share links are revoked (Undo does not bring them back). `conversation_purge_trash` (the `purge_trash` command)
    deletes it for good.
    """
    now = timezone.now()
    with transaction.atomic():
        conversation.deleted_at = now
        conversation.save(update_fields=["deleted_at"])
        ShareLink.objects.filter(conversation=conversation, revoked_at__isnull=True).update(revoked_at=now)
    # A reply still being written is left to finish, so that Undo gives everything back.
    return conversation


def conversation_restore(*, conversation: Conversation) -> Conversation:
    """Take a conversation back out of the trash (the Undo after a delete)."""
    conversation.deleted_at = None
    conversation.save(update_fields=["deleted_at"])
    return conversation


def conversation_purge_trash(*, older_than: timedelta) -> int:
    """Delete for good the conversations in the trash for longer than `older_than`, and those an import
    that died left staged; returns how many."""
    cutoff = timezone.now() - older_than
    purged = conversation_import_cleanup()
    trash = Conversation.objects.filter(deleted_at__lt=cutoff, import_batch__isnull=True)
    for conversation in trash.only("pk").iterator():
        with transaction.atomic():
            Conversation.objects.filter(pk=conversation.pk).update(current_message=None)
            conversation.delete()
        purged += 1
    return purged
