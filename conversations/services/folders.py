"""Folders: create, rename and delete a person's folders, file a conversation in one, and remember a folder's
collapsed state in the sidebar."""

from django.db import IntegrityError, transaction

from conversations.models import FOLDER_NAME_LENGTH, Conversation, Folder
from conversations.services.errors import ChatError


def _clean_name(owner_id: int, name: str, *, folder: Folder | None = None) -> str:
    name = " ".join(name.split())
    if not name:
        raise ChatError("Give the folder a name.")
    if len(name) > FOLDER_NAME_LENGTH:
        raise ChatError(f"A folder name can have at most {FOLDER_NAME_LENGTH} characters.")
    same = Folder.objects.filter(owner_id=owner_id, name=name)
    if folder is not None:
        same = same.exclude(pk=folder.pk)
    if same.exists():
        raise ChatError(f"You already have a folder named “{name}”.")
    return name


def folder_create(*, owner, name: str) -> Folder:
    """A new folder of the owner's; refused (ChatError) without a name, too long, or a name already used."""
    name = _clean_name(owner.pk, name)
    try:
        with transaction.atomic():
            return Folder.objects.create(owner=owner, name=name)
    except IntegrityError:  # the same name, created twice at the same moment
        raise ChatError(f"You already have a folder named “{name}”.") from None


def folder_rename(*, folder: Folder, name: str) -> Folder:
    """Rename a folder (same rules as a new one)."""
    folder.name = _clean_name(folder.owner_id, name, folder=folder)
    try:
        with transaction.atomic():
            folder.save(update_fields=["name"])
    except IntegrityError:
        raise ChatError(f"You already have a folder named “{folder.name}”.") from None
    return folder


def folder_delete(*, folder: Folder) -> int:
    """Delete a folder; its conversations go back to the main list (nothing else is deleted). Returns how many."""
    with transaction.atomic():
        filed = Conversation.objects.filter(folder=folder).update(folder=None)
        folder.delete()
    return filed


def folder_collapse(*, folder: Folder, collapsed: bool) -> Folder:
    """Remember whether the sidebar shows the folder's conversations (per person, on every device)."""
    folder.collapsed = collapsed
    folder.save(update_fields=["collapsed"])
    return folder


def conversation_move(*, conversation: Conversation, folder: Folder | None) -> Conversation:
    """File a conversation in one of its owner's folders, or (None) take it out of its folder."""
    if conversation.temporary:
        raise ChatError("A temporary chat is not kept, so it cannot be filed in a folder.")
    if folder is not None and folder.owner_id != conversation.owner_id:
        raise ChatError("This folder is not yours.")  # views load folders through the owner: never reached
    conversation.folder = folder
    conversation.save(update_fields=["folder"])
    return conversation
