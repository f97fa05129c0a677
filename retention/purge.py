"""Deleting conversations for good, a short batch per transaction, never one with a reply being written."""

from dataclasses import dataclass, fields
from datetime import datetime

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet

from conversations.models import Conversation, Message, ShareLink


@dataclass
class Removed:
    """What a deletion removed (or, counted on a dry run, would remove)."""

    conversations: int = 0
    messages: int = 0
    share_links: int = 0

    def __iadd__(self, other: "Removed") -> "Removed":
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))
        return self


def generating(*, now: datetime) -> Exists:
    """True for a conversation with a reply still being written (one whose worker died does not count)."""
    return Exists(
        Message.objects.filter(
            conversation=OuterRef("pk"),
            status__in=Message.IN_PROGRESS,
            updated_at__gte=now - Message.stale_after(),
        )
    )


def count(candidates: QuerySet[Conversation]) -> Removed:
    """What `delete` would remove of `candidates`, changing nothing."""
    ids = candidates.values("pk")
    return Removed(
        conversations=candidates.count(),
        messages=Message.objects.filter(conversation__in=ids).count(),
        share_links=ShareLink.objects.filter(conversation__in=ids).count(),
    )


def delete(candidates: QuerySet[Conversation], *, now: datetime, batch_size: int) -> Removed:
    """Delete `candidates` for good, `batch_size` conversations per transaction.

    Each batch is chosen again inside its transaction, under a row lock where the database has
    one (PostgreSQL), so a conversation that a reply started in, or that someone wrote in,
    since the run began is left alone when the query says so.
    """
    removed, after = Removed(), 0
    candidates = candidates.exclude(generating(now=now)).order_by("pk")
    while True:
        with transaction.atomic():
            batch = list(
                candidates.filter(pk__gt=after)
                .select_for_update(of=("self",))
                .values_list("pk", flat=True)[:batch_size]
            )
            if not batch:
                return removed
            after = batch[-1]
            # The conversation's own links into its messages go first, so the delete has no cycle to untie.
            Conversation.objects.filter(pk__in=batch).update(current_message=None, title_source=None)
            _, per_model = Conversation.objects.filter(pk__in=batch).delete()
        removed += Removed(
            conversations=per_model.get(Conversation._meta.label, 0),
            messages=per_model.get(Message._meta.label, 0),
            share_links=per_model.get(ShareLink._meta.label, 0),
        )
