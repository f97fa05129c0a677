"""The sidebar's reads: a page of conversations grouped by day, with the pinned ones and the folders
on the first page, or search results (`sidebar_list`); keyset-paged, so every page costs the same."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from conversations.folders import sidebar_folders
from conversations.models import Conversation, Folder
from conversations.search import Hit, search_messages

SIDEBAR_PAGE = 50
PINNED_LIMIT = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SIDEBAR_FIELDS = ("id", "title", "updated_at", "pinned_at", "archived_at", "folder_id")


@dataclass
class SidebarGroup:
    label: str  # "" when the group continues the previous page's last group
    items: list[Conversation]


@dataclass
class SidebarPage:
    pinned: list[Conversation] = field(default_factory=list)
    groups: list[SidebarGroup] = field(default_factory=list)
    next_cursor: str = ""  # pass back as `cursor` for the next page; "" on the last page
    last_group: str = ""  # pass back as `after_group`, so a page does not repeat a heading
    archived: bool = False
    folders: list[Folder] | None = None  # read for the main list's first page only: each with its `items`
    folder: Folder | None = None  # the page lists this folder's conversations

    @property
    def is_empty(self) -> bool:
        return not (self.pinned or self.groups or self.folders)


def sidebar_page(
    owner, *, cursor: str = "", after_group: str = "", archived: bool = False, folder: Folder | None = None
) -> SidebarPage:
    """One page of the owner's conversations for the sidebar, newest first, grouped by day.

    The first page also holds the pinned conversations. Pages are cut by keyset
    (`cursor` = updated_at and id of the last row shown), so every page costs the same
    two index range scans however long the history is (and the folders, two more). Deleted and
    temporary conversations never appear; archived ones only with `archived=True`; filed ones
    under their folder, or alone with `folder`.
    """
    live = Conversation.objects.filter(owner=owner, deleted_at__isnull=True, temporary=False).only(*_SIDEBAR_FIELDS)
    page = SidebarPage(archived=archived, folder=folder)
    if archived:
        rows = live.filter(archived_at__isnull=False)
    elif folder is not None:
        rows = live.filter(folder=folder, archived_at__isnull=True, pinned_at__isnull=True)
    else:
        rows = live.filter(archived_at__isnull=True, pinned_at__isnull=True, folder__isnull=True)
        if not cursor:
            page.pinned = list(live.filter(pinned_at__isnull=False).order_by("-updated_at", "-id")[:PINNED_LIMIT])
            page.folders = sidebar_folders(owner, fields=_SIDEBAR_FIELDS)
    position = _parse_cursor(cursor)
    if position is not None:
        updated_at, pk = position
        rows = rows.filter(updated_at__lte=updated_at).exclude(updated_at=updated_at, id__gte=pk)
    items = list(rows.order_by("-updated_at", "-id")[: SIDEBAR_PAGE + 1])
    if len(items) > SIDEBAR_PAGE:
        items = items[:SIDEBAR_PAGE]
        page.next_cursor = _cursor(items[-1])
    page.groups = _grouped(items, after_group)
    page.last_group = page.groups[-1].label or after_group if page.groups else after_group
    return page


@dataclass
class SidebarList:
    """What the sidebar lists: search results while `query` is set, else a page of conversations."""

    query: str = ""
    archived: bool = False
    page: SidebarPage | None = None
    hits: list[Hit] = field(default_factory=list)
    folder: Folder | None = None  # the search, or the page, is limited to this folder
    # After a turn (conversations.sidebar_update): the list shown needs no change, or only a new row
    # put before the row `row_before`.
    unchanged: bool = False
    row: Conversation | None = None
    row_before: int | None = None


def sidebar_list(
    owner, *, query: str = "", archived: bool = False, cursor: str = "", folder: Folder | None = None
) -> SidebarList:
    """The sidebar's list for `?q=`, `?archived=1`, `?folder=` and `?after=`."""
    if query:
        hits = search_messages(owner, query, folder_id=folder.pk if folder else None)
        return SidebarList(query=query, archived=archived, hits=hits, folder=folder)
    page = sidebar_page(owner, cursor=cursor, archived=archived, folder=folder)
    return SidebarList(archived=archived, page=page, folder=folder)


def _cursor(conversation: Conversation) -> str:
    micros = (conversation.updated_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{conversation.pk}"


def _parse_cursor(cursor: str) -> tuple[datetime, int] | None:
    try:
        micros, pk = (int(part) for part in cursor.split("."))
    except ValueError:
        return None
    return _EPOCH + timedelta(microseconds=micros), pk


def day_group(moment: datetime, today) -> str:
    """Today, Yesterday, Previous 7 days, Previous 30 days or Older, in the site's time zone."""
    days = (today - timezone.localtime(moment).date()).days
    if days <= 0:
        return "Today"
    if days == 1:
        return "Yesterday"
    if days <= 7:
        return "Previous 7 days"
    if days <= 30:
        return "Previous 30 days"
    return "Older"


def _grouped(items: list[Conversation], after_group: str) -> list[SidebarGroup]:
    today = timezone.localdate()
    groups: list[SidebarGroup] = []
    current = after_group
    for item in items:
        label = day_group(item.updated_at, today)
        if not groups or label != current:
            groups.append(SidebarGroup(label="" if label == current else label, items=[]))
            current = label
        groups[-1].items.append(item)
    return groups
