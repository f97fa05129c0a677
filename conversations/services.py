"""Writes of the conversations domain: starting chats, sending, retrying, regenerating,
editing and stopping replies, and moving between alternative replies.

The person's message and a `pending` assistant message are committed together before the
upstream is called; the reply is then generated in the background (`generation`), which
saves it as it arrives and ends it as `complete`, `stopped` or `error`. Messages form a
tree: Regenerate and Edit add alternatives beside a message and never change or delete one.
"""

import logging
import secrets
import time
import uuid
from datetime import timedelta

from django.conf import settings as django_settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from conversations import generation, history
from conversations.models import TITLE_LENGTH, Conversation, Message, ShareLink, title_from
from conversations.payload import DoesNotFit, build_messages, fit_window, request_params
from conversations.selectors import latest_leaf_under
from providers import catalogue
from usage import quotas

logger = logging.getLogger(__name__)


class ChatError(Exception):
    """A request the chat cannot carry out, with a message fit to show the person."""


class LimitReached(ChatError):
    """The person's quota or rate limit refuses the message: nothing was stored or sent."""


class DatabaseBusy(ChatError):
    """The database stayed locked by another writer: nothing was stored, the person sends again."""


# How many times a message is offered to the database when SQLite answers "database is
# locked". Each attempt first waits up to the busy timeout (20 s): two stay under the 60 s
# after which a proxy usually gives up on the request.
WRITE_ATTEMPTS = 2


def _retrying_when_locked(write):
    """Run `write` (one transaction); when the database stays locked, run it again, a few times."""
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            return write()
        except OperationalError as error:
            if "database is locked" not in str(error):  # SQLite's busy timeout ran out
                raise
            if attempt == WRITE_ATTEMPTS:
                raise DatabaseBusy(
                    "The site is very busy and your message was not stored. It is still in the box: "
                    "press Send again in a moment."
                ) from None


def _check_can_ask(owner, model: str) -> None:
    """Refuse, before anything is stored, a request for a model that is off or past the person's limits."""
    model = catalogue.offered_model(model)
    if not model:
        raise ChatError("No model is available: an admin needs to enable one under Admin › Chat models.")
    if catalogue.model_is_turned_off(model):
        raise ChatError(
            f"The model {model} has been turned off by an admin, so this message was not sent. "
            "Choose another model in this chat's settings."
        )
    try:
        quotas.check(owner)
    except quotas.LimitReached as error:
        raise LimitReached(str(error)) from None


def _check_fits(conversation: Conversation, content: str) -> None:
    """Refuse, before anything is stored, a message that alone would overflow the model's window."""
    messages = [*build_messages(conversation, upto=None), {"role": Message.Role.USER.value, "content": content}]
    try:
        fit_window(messages, model=conversation.model, params=request_params(conversation))
    except DoesNotFit as error:
        raise ChatError(str(error)) from None


def conversation_start(
    *, owner, content: str, model: str, settings: dict | None = None, client_id: uuid.UUID | None = None
) -> tuple[Message, Message, bool]:
    """Create a conversation from its first message and start its reply.

    Returns (user message, assistant message, created), as `message_send` does.
    """
    content = _clean(content)
    if client_id is not None and Message.objects.filter(client_id=client_id).exists():
        return *_stored_turn(owner=owner, client_id=client_id), False  # a double submit: stored once
    _check_can_ask(owner, model)
    _check_fits(Conversation(owner=owner, model=model, **(settings or {})), content)

    def store():
        with transaction.atomic():
            conversation = Conversation.objects.create(owner=owner, model=model, **(settings or {}))
            return _store_turn(conversation, content, parent=None, client_id=client_id)

    try:
        user_message, assistant_message = _retrying_when_locked(store)
    except IntegrityError:
        user_message, assistant_message = _stored_turn(owner=owner, client_id=client_id)
        return user_message, assistant_message, False
    return user_message, assistant_message, True


def message_send(
    *, conversation: Conversation, content: str, client_id: uuid.UUID | None = None, parent_id: int | None = None
) -> tuple[Message, Message, bool]:
    """Store the person's message after `parent_id` (default: the current message) and start the reply.

    Returns (user message, assistant message, created). When `client_id` was already used
    (a double submit), the stored pair is returned and nothing is sent upstream again.
    """
    content = _clean(content)

    def store():
        with transaction.atomic():
            # Checked first, inside the transaction: a repeat must not be refused because
            # the first submit's reply is now being written.
            if client_id is not None and Message.objects.filter(client_id=client_id).exists():
                return *_repeated_turn(conversation, client_id), False
            parent = _parent_for_reply(conversation, parent_id)
            _check_can_ask(conversation.owner, conversation.model)
            _check_fits(conversation, content)
            return *_store_turn(conversation, content, parent=parent, client_id=client_id), True

    try:
        return _retrying_when_locked(store)
    except IntegrityError:  # the same message, submitted twice at the same moment
        return *_repeated_turn(conversation, client_id), False


def _repeated_turn(conversation: Conversation, client_id: uuid.UUID) -> tuple[Message, Message | None]:
    user_message, assistant_message = _stored_turn(owner=conversation.owner, client_id=client_id)
    if user_message.conversation_id != conversation.pk:
        raise ChatError("This message was already sent in another conversation.")
    return user_message, assistant_message


def message_regenerate(*, message: Message) -> Message:
    """Ask for another reply beside an assistant message; the old one stays as an alternative."""
    if message.role != Message.Role.ASSISTANT or message.parent_id is None:
        raise ChatError("Only a reply can be regenerated.")
    if message.in_progress:
        raise ChatError("This reply is still being written. Press Stop first.")
    _check_can_ask(message.conversation.owner, message.conversation.model)
    return _store_alternative(message.conversation, parent=message.parent)


def message_edit(*, message: Message, content: str) -> tuple[Message, Message]:
    """Send an edited copy of a person's message beside the original, and start its reply."""
    if message.role != Message.Role.USER:
        raise ChatError("Only your own messages can be edited.")
    content = _clean(content)
    _check_can_ask(message.conversation.owner, message.conversation.model)
    _check_fits(message.conversation, content)
    with transaction.atomic():
        return _store_turn(message.conversation, content, parent=message.parent, client_id=None)


def message_retry(*, message: Message) -> Message:
    """Ask the upstream again for a failed or interrupted reply; returns the message that will hold it.

    A reply with no text is retried in its place. One with partial text keeps it, and the
    new reply is added beside it, as Regenerate does.
    """
    if not message.can_retry:
        raise ChatError("Only a failed reply can be retried.")
    _check_can_ask(message.conversation.owner, message.conversation.model)
    if message.content:
        return _store_alternative(message.conversation, parent=message.parent)
    # Compare-and-set, so two Retry clicks make one upstream call.
    with transaction.atomic():
        claimed = Message.objects.filter(pk=message.pk, status=message.status, updated_at=message.updated_at).update(
            status=Message.Status.PENDING, error="", error_code="", stop_requested=False, updated_at=timezone.now()
        )
        if claimed:
            transaction.on_commit(lambda: generation.start(message.pk))
    message.refresh_from_db()
    return message


def message_stop(*, message: Message) -> None:
    """Stop a reply being written; the text so far is kept and the reply is marked stopped."""
    Message.objects.filter(pk=message.pk, status__in=Message.IN_PROGRESS).update(stop_requested=True)
    generation.cancel(message.pk)


def conversation_switch(*, conversation: Conversation, message: Message) -> Conversation:
    """Show the branch through `message` (one of the "2/3" alternatives), down to its newest reply."""
    conversation.current_message_id = latest_leaf_under(conversation, message.pk)
    conversation.save(update_fields=["current_message"])
    return conversation


def conversation_update_settings(*, conversation: Conversation, settings: dict) -> Conversation:
    """Store a conversation's model, system prompt and generation parameters."""
    for name, value in settings.items():
        setattr(conversation, name, value)
    conversation.save(update_fields=list(settings))
    return conversation


def _clean(content: str) -> str:
    content = content.strip()
    if not content:
        raise ChatError("Type a message first.")
    return content


def _parent_for_reply(conversation: Conversation, parent_id: int | None) -> Message | None:
    if parent_id is None:
        parent_id = conversation.current_message_id
        if parent_id is None:
            return None
    parent = Message.objects.filter(pk=parent_id, conversation=conversation).first()
    if parent is None:
        raise ChatError("The message you answered is not in this conversation any more. Reload the page.")
    if parent.in_progress:
        raise ChatError("Wait for the reply to finish, or press Stop.")
    return parent


def _store_turn(conversation: Conversation, content: str, *, parent, client_id) -> tuple[Message, Message]:
    # Runs inside the caller's transaction: both messages are committed before any upstream call.
    user_message = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, content=content, client_id=client_id, parent=parent
    )
    return user_message, _store_reply(conversation, parent=user_message)


def _store_reply(conversation: Conversation, *, parent: Message) -> Message:
    """A pending reply under `parent`, made the current message; generated once committed."""
    model = catalogue.offered_model(conversation.model)
    reply = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        status=Message.Status.PENDING,
        model=model,
        parent=parent,
    )
    fields = {"updated_at": timezone.now(), "current_message": reply}
    if model != conversation.model:  # a model this site does not offer: the chat moves to the default
        fields["model"] = model
    if not conversation.title and parent.role == Message.Role.USER:
        fields["title"], fields["title_source"] = _title_from(parent.content), parent
    Conversation.objects.filter(pk=conversation.pk).update(**fields)
    for name, value in fields.items():
        setattr(conversation, name, value)
    transaction.on_commit(lambda: generation.start(reply.pk))
    return reply


def _store_alternative(conversation: Conversation, *, parent: Message) -> Message:
    """A new reply beside the others under `parent` (Regenerate, Retry of a partial reply), unless
    one is being written there: then that one, so a repeated click starts one generation."""
    with transaction.atomic():
        # The clicks on one parent queue here: PostgreSQL locks its row, and SQLite's IMMEDIATE
        # transactions already take the write lock at BEGIN. The second then sees the first's reply.
        list(Message.objects.select_for_update().filter(pk=parent.pk).values_list("pk", flat=True))
        writing = parent.children.filter(role=Message.Role.ASSISTANT, status__in=Message.IN_PROGRESS).order_by("-id")
        for reply in writing:
            if not reply.is_stale:  # a stale reply's worker died: it blocks nothing
                return reply
        return _store_reply(conversation, parent=parent)


def _stored_turn(*, owner, client_id) -> tuple[Message, Message | None]:
    user_message = (
        Message.objects.select_related("conversation").filter(conversation__owner=owner, client_id=client_id).first()
    )
    if user_message is None:
        raise ChatError("This message could not be stored. Reload the page and send it again.")
    return user_message, user_message.children.order_by("id").first()


def _title_from(content: str) -> str:
    return title_from(content)


# --- History: rename, pin, archive, delete (with undo), share ------------------------


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


def share_create(*, conversation: Conversation) -> ShareLink:
    """The conversation's public read-only link: the existing one, or a new unguessable token."""
    existing = conversation.share_links.filter(revoked_at__isnull=True).first()
    if existing is not None:
        return existing
    return ShareLink.objects.create(conversation=conversation, token=secrets.token_urlsafe(32))


def share_revoke(*, conversation: Conversation) -> int:
    """Make every share link of the conversation stop working; returns how many were active."""
    return conversation.share_links.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


# --- Import ---------------------------------------------------------------------------

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
    limit = django_settings.CHAT_IMPORT_MAX_BYTES
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
