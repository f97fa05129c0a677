"""Import: the conversations of an export file (parsed and checked by `history`), stored in short batches."""

import logging
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from conversations import history
from conversations.models import Conversation, Folder, Message, rendered_html, title_from
from conversations.services.errors import ChatError
from providers import catalogue

logger = logging.getLogger(__name__)

# Messages (and conversations) stored per transaction: on SQLite every other writer waits
# behind one such transaction, so it must take a moment, however large the file.
IMPORT_BATCH = 200
# Staged rows of an import untouched for this long belong to a process that died.
IMPORT_STALE = timedelta(hours=1)


def conversation_import(*, owner, raw: bytes) -> list[Conversation]:
    """Store every conversation of an export file (chatsite JSON or ChatGPT), or none.

    Raises ChatError, with what is wrong, for a file that is too large or malformed; the
    whole file is checked before anything is written. It is then written in short batches
    (IMPORT_BATCH rows each), so other people's messages are never held up for long: the
    rows stay staged, hidden from every page, until one last statement shows them all. A
    failure removes what was staged; an import whose process died is removed later
    (`conversation_import_cleanup`, run by the next import and by purge_trash).
    """
    limit = settings.CHAT_IMPORT_MAX_BYTES
    if len(raw) > limit:
        raise ChatError(f"This file is {len(raw):,} bytes; the limit is {limit:,} bytes (CHAT_IMPORT_MAX_BYTES).")
    try:
        imported = history.parse_import(raw)
    except history.ImportError_ as error:
        raise ChatError(f"Nothing was imported. {error}") from None
    if not imported:
        raise ChatError("Nothing was imported: the file holds no conversations.")
    conversation_import_cleanup(owner=owner)
    batch = uuid.uuid4()
    try:
        stored = _stage_import(owner=owner, imported=imported, batch=batch)
        with transaction.atomic():
            _file_in_folders(owner, stored, imported)
            Conversation.objects.filter(import_batch=batch).update(import_batch=None, deleted_at=None)
    except BaseException:
        try:
            _discard_staged(batch)
        except Exception:  # the database is failing: conversation_import_cleanup removes them later
            logger.exception("could not remove the staged rows of failed import %s", batch)
        raise
    for conversation in stored:
        conversation.import_batch = conversation.deleted_at = None
    return stored


def _file_in_folders(owner, stored: list[Conversation], imported: list[history.ImportedConversation]) -> None:
    """Put each imported conversation in the owner's folder of the name the file gave, made when missing.

    Run in the import's last transaction, so a failed import leaves no folder behind."""
    filed: dict[str, list[int]] = {}
    for conversation, item in zip(stored, imported, strict=True):
        if item.folder:
            filed.setdefault(item.folder, []).append(conversation.pk)
    if not filed:
        return
    folders = {folder.name: folder for folder in Folder.objects.filter(owner=owner, name__in=filed)}
    missing = [Folder(owner=owner, name=name) for name in filed if name not in folders]
    for folder in Folder.objects.bulk_create(missing):
        folders[folder.name] = folder
    for name, ids in filed.items():
        Conversation.objects.filter(pk__in=ids).update(folder=folders[name])
    for conversation, item in zip(stored, imported, strict=True):
        conversation.folder = folders.get(item.folder)


def conversation_import_cleanup(*, owner=None) -> int:
    """Remove the staged rows of imports that died (untouched for IMPORT_STALE); returns how many."""
    staged = Conversation.objects.filter(import_batch__isnull=False)
    if owner is not None:
        staged = staged.filter(owner=owner)
    cutoff = timezone.now() - IMPORT_STALE
    stale = staged.values("import_batch").annotate(last=Max("deleted_at")).filter(last__lt=cutoff)
    return sum(_discard_staged(row["import_batch"]) for row in stale)


def _import_groups(imported: list[history.ImportedConversation]):
    """Slices (conversation number, first message, end) of about IMPORT_BATCH rows each: one transaction's work."""
    group, rows = [], 0
    for number, item in enumerate(imported):
        start, rows = 0, rows + 1  # the conversation's own row
        while True:
            end = min(len(item.messages), start + max(1, IMPORT_BATCH - rows))
            group.append((number, start, end))
            rows += end - start
            if rows >= IMPORT_BATCH:
                yield group
                group, rows = [], 0
            if end == len(item.messages):
                break
            start = end
    if group:
        yield group


def _stage_import(*, owner, imported: list[history.ImportedConversation], batch: uuid.UUID) -> list[Conversation]:
    now = timezone.now()
    stored: list[Conversation] = []
    ids: list[list[int]] = []  # per conversation, the ids its messages were given, in file order
    for group in _import_groups(imported):
        started = time.monotonic()
        with transaction.atomic():
            staged_at = timezone.now()
            for number, start, end in group:
                item = imported[number]
                if start == 0:
                    model = catalogue.offered_model(item.model)
                    stored.append(
                        Conversation.objects.create(
                            owner=owner,
                            title=item.title,
                            model=model,
                            imported_model=item.model if item.model != model else "",
                            system_prompt=item.system_prompt,
                            created_at=item.created_at or now,
                            updated_at=item.updated_at or item.created_at or now,
                            pinned_at=now if item.pinned else None,
                            archived_at=now if item.archived else None,
                            deleted_at=staged_at,
                            import_batch=batch,
                            **item.params,
                        )
                    )
                    ids.append([])
                _stage_messages(stored[number], item, start, end, ids[number])
        # SQLite has one writer at a time and no queue: a pause after each batch (a third of the
        # time) lets the people waiting for it in (their busy handler polls every 100 ms at most).
        if connection.vendor == "sqlite":
            time.sleep(min((time.monotonic() - started) / 2, 0.05))
    return stored


def _stage_messages(
    conversation: Conversation, item: history.ImportedConversation, start: int, end: int, ids: list[int]
) -> None:
    sources = item.messages[start:end]
    messages = Message.objects.bulk_create(
        [
            Message(
                conversation=conversation,
                # A parent stored by an earlier batch is known now; one in this batch gets its id below.
                parent_id=ids[message.parent] if message.parent is not None and message.parent < start else None,
                role=message.role,
                content=message.content,
                **rendered_html(message.content),  # bulk_create skips Message.save
                status=message.status,
                model=message.model,
                finish_reason=message.finish_reason,
                prompt_tokens=message.prompt_tokens,
                completion_tokens=message.completion_tokens,
                total_tokens=message.total_tokens,
                latency_ms=message.latency_ms,
                first_token_ms=message.first_token_ms,
                error_code=message.error_code,
                error=message.error,
                created_at=message.created_at or conversation.created_at,
            )
            for message in sources
        ]
    )
    ids.extend(message.pk for message in messages)
    _link_parents(
        [
            (ids[source.parent], message.pk)
            for message, source in zip(messages, sources, strict=True)
            if source.parent is not None and source.parent >= start
        ]
    )
    if end < len(item.messages):
        return
    fields = []
    if item.current is not None:
        conversation.current_message_id = ids[item.current]
        fields.append("current_message")
    # A title chatsite took from the first question is automatic here too (see title_source).
    first = next((n for n, m in enumerate(item.messages) if m.parent is None and m.role == Message.Role.USER), None)
    if first is not None and item.title and item.title == title_from(item.messages[first].content):
        conversation.title_source_id = ids[first]
        fields.append("title_source")
    if fields:
        conversation.save(update_fields=fields)


def _link_parents(pairs: list[tuple[int, int]]) -> None:
    """Set (parent id, message id) on messages just inserted: one prepared UPDATE run for each pair.

    bulk_update would build a CASE expression of every row in Python, which tripled the time an
    import batch holds the write lock.
    """
    if pairs:
        table = connection.ops.quote_name(Message._meta.db_table)
        with connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {table} SET parent_id = %s WHERE id = %s", pairs)  # noqa: S608 - no input


def _discard_staged(batch: uuid.UUID) -> int:
    """Delete an import's staged conversations, IMPORT_BATCH rows per transaction; returns how many."""
    staged = Conversation.objects.filter(import_batch=batch)
    messages = Message.objects.filter(conversation__in=staged)
    while True:
        with transaction.atomic():
            # Newest first: a message's replies are newer, so they are gone before it is.
            chunk = list(messages.order_by("-id").values_list("pk", flat=True)[:IMPORT_BATCH])
            if not chunk:
                break
            Message.objects.filter(pk__in=chunk).delete()
    count = 0
    while True:
        with transaction.atomic():
            chunk = list(staged.values_list("pk", flat=True)[:IMPORT_BATCH])
            if not chunk:
                return count
            Conversation.objects.filter(pk__in=chunk).delete()
            count += len(chunk)
