"""What a stored turn changes in the sidebar the page shows, so a send renders only that.

A turn makes its conversation the newest of its section (pinned, or the rest): when it led that
section already, today, under the same title, the sidebar shows the same thing after the turn
and nothing is sent; a new conversation is one row above the row that led the list when that
row is today's too. A temporary chat is never in the sidebar, so its turns change nothing.
Anything else (a first conversation of the day, a title set by this turn, a conversation further
down, one filed in a folder, whose section the folders' query draws) re-renders the first page,
as a page load would.
"""

from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from conversations.models import Conversation
from conversations.sidebar import SidebarList, day_group, sidebar_list


def sidebar_after_turn(
    owner, conversation: Conversation, *, updated_before: datetime | None = None, title_before: str = ""
) -> SidebarList:
    """The sidebar's change once a turn was stored in `conversation`; `updated_before` and
    `title_before` are what it had before the turn (no `updated_before`: it is new)."""
    if conversation.temporary:
        return SidebarList(unchanged=True)
    today = timezone.localdate()
    shown = Conversation.objects.filter(owner=owner, deleted_at__isnull=True, archived_at__isnull=True, temporary=False)
    # The day groups hold the unpinned conversations outside folders; Pinned holds every pinned one.
    unpinned = shown.filter(pinned_at__isnull=True, folder__isnull=True)
    if updated_before is None:
        lead = unpinned.exclude(pk=conversation.pk).order_by("-updated_at", "-id").only("updated_at").first()
        if lead is not None and day_group(lead.updated_at, today) == "Today":
            return SidebarList(row=conversation, row_before=lead.pk)
        return sidebar_list(owner)
    if conversation.archived_at is not None:
        return SidebarList(unchanged=True)  # the list leaves archived conversations out
    filed = conversation.folder_id is not None and conversation.pinned_at is None
    if filed or conversation.title != title_before or day_group(updated_before, today) != "Today":
        return sidebar_list(owner)
    section = unpinned if conversation.pinned_at is None else shown.filter(pinned_at__isnull=False)
    ahead = section.exclude(pk=conversation.pk).filter(
        Q(updated_at__gt=updated_before) | Q(updated_at=updated_before, id__gt=conversation.pk)
    )
    return sidebar_list(owner) if ahead.exists() else SidebarList(unchanged=True)
