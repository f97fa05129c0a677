"""Reads of folders for the sidebar: a person's folders, each with its newest conversations."""

from django.db.models import F, Window
from django.db.models.functions import RowNumber

from conversations.models import Conversation, Folder

FOLDER_PREVIEW = 20  # conversations shown under a folder; "Show all" lists the rest page by page


def sidebar_folders(owner, *, fields: tuple[str, ...]) -> list[Folder]:
    """The owner's folders by name, each with `items` (its newest FOLDER_PREVIEW conversations that are
    neither pinned nor archived) and `more` (whether it holds others): two queries however many."""
    folders = list(Folder.objects.filter(owner=owner))
    if not folders:
        return folders
    newest = [F("updated_at").desc(), F("id").desc()]
    rows = (
        Conversation.objects.filter(
            folder__in=folders,
            deleted_at__isnull=True,
            archived_at__isnull=True,
            pinned_at__isnull=True,
            temporary=False,
        )
        .only(*fields)
        .annotate(rank=Window(RowNumber(), partition_by=F("folder_id"), order_by=newest))
        .filter(rank__lte=FOLDER_PREVIEW + 1)
        .order_by("folder_id", *newest)
    )
    filed: dict[int, list[Conversation]] = {folder.pk: [] for folder in folders}
    for conversation in rows:
        filed[conversation.folder_id].append(conversation)
    for folder in folders:
        folder.items = filed[folder.pk][:FOLDER_PREVIEW]
        folder.more = len(filed[folder.pk]) > FOLDER_PREVIEW
    return folders


def folder_choices(owner) -> list[Folder]:
    """The owner's folders by name, for a "Move to folder" menu."""
    return list(Folder.objects.filter(owner=owner).only("id", "name"))
