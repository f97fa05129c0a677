"""Writes of the conversations domain, one module per job: turns (send, retry, regenerate, edit,
stop, switch; stopping every reply of a person), organise (settings, titles, pins, archive,
trash), folders, temporary (chats that are not kept), sharing, importing. Views and commands call
them as `services.<name>`."""

from conversations.services.errors import ChatError, DatabaseBusy, LimitReached
from conversations.services.folders import (
    conversation_move,
    folder_collapse,
    folder_create,
    folder_delete,
    folder_rename,
)
from conversations.services.importing import conversation_import, conversation_import_cleanup
from conversations.services.organise import (
    conversation_archive,
    conversation_delete,
    conversation_pin,
    conversation_purge_trash,
    conversation_rename,
    conversation_restore,
    conversation_update_settings,
)
from conversations.services.sharing import share_create, share_revoke
from conversations.services.temporary import temporary_chats_leave, temporary_chats_purge
from conversations.services.turns import (
    conversation_start,
    conversation_switch,
    message_edit,
    message_regenerate,
    message_retry,
    message_send,
    message_stop,
    replies_stop,
)

__all__ = [
    "ChatError",
    "DatabaseBusy",
    "LimitReached",
    "conversation_archive",
    "conversation_delete",
    "conversation_import",
    "conversation_import_cleanup",
    "conversation_move",
    "conversation_pin",
    "conversation_purge_trash",
    "conversation_rename",
    "conversation_restore",
    "conversation_start",
    "conversation_switch",
    "conversation_update_settings",
    "folder_collapse",
    "folder_create",
    "folder_delete",
    "folder_rename",
    "message_edit",
    "message_regenerate",
    "message_retry",
    "message_send",
    "message_stop",
    "replies_stop",
    "share_create",
    "share_revoke",
    "temporary_chats_leave",
    "temporary_chats_purge",
]
