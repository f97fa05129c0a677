"""Writes of the conversations domain: starting chats, sending, retrying, regenerating,
editing and stopping replies, and moving between alternative replies.

The person's message and a `pending` assistant message are committed together before the
upstream is called; the reply is then generated in the background (`generation`), which
saves it as it arrives and ends it as `complete`, `stopped` or `error`. Messages form a
tree: Regenerate and Edit add alternatives beside a message and never change or delete one.
"""

import secrets
import uuid
from datetime import timedelta

from django.conf import settings as django_settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations import generation, history, quotas, selectors
from conversations.models import TITLE_LENGTH, Conversation, Message, ShareLink, UserQuota, title_from
from conversations.payload import DoesNotFit, build_messages, fit_window, request_params
from conversations.selectors import latest_leaf_under


class ChatError(Exception):
    """A request the chat cannot carry out, with a message fit to show the person."""


class LimitReached(ChatError):
    """The person's quota or rate limit refuses the message: nothing was stored or sent."""


def _check_can_ask(owner, model: str) -> None:
    """Refuse, before anything is stored, a request for a model that is off or past the person's limits."""
    if not model:
        raise ChatError("No model is available: an admin needs to enable one under Admin › Chat models.")
    if selectors.model_is_turned_off(model):
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
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(owner=owner, model=model, **(settings or {}))
            user_message, assistant_message = _store_turn(conversation, content, parent=None, client_id=client_id)
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
    try:
        with transaction.atomic():
            # Checked first, inside the transaction: a repeat must not be refused because
            # the first submit's reply is now being written.
            if client_id is not None and Message.objects.filter(client_id=client_id).exists():
                return *_repeated_turn(conversation, client_id), False
            parent = _parent_for_reply(conversation, parent_id)
            _check_can_ask(conversation.owner, conversation.model)
            _check_fits(conversation, content)
            user_message, assistant_message = _store_turn(conversation, content, parent=parent, client_id=client_id)
    except IntegrityError:  # the same message, submitted twice at the same moment
        return *_repeated_turn(conversation, client_id), False
    return user_message, assistant_message, True


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


def user_signup(*, form) -> AbstractBaseUser:
    """Create an account from a valid UserCreationForm; it starts with the site's default quota."""
    with transaction.atomic():
        user = form.save()
        UserQuota.objects.create(user=user)  # blank fields: the site default
    return user


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
    reply = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        status=Message.Status.PENDING,
        model=conversation.model,
        parent=parent,
    )
    fields = {"updated_at": timezone.now(), "current_message": reply}
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
    """Delete for good the conversations in the trash for longer than `older_than`; returns how many."""
    cutoff = timezone.now() - older_than
    purged = 0
    for conversation in Conversation.objects.filter(deleted_at__lt=cutoff).only("pk").iterator():
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


def conversation_import(*, owner, raw: bytes) -> list[Conversation]:
    """Store every conversation of an export file (chatsite JSON or ChatGPT), or none.

    Raises ChatError, with what is wrong, for a file that is too large or malformed;
    the whole file is checked before anything is written, and written in one transaction.
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
    now = timezone.now()
    stored = []
    with transaction.atomic():
        for item in imported:
            conversation = Conversation.objects.create(
                owner=owner,
                title=item.title,
                model=item.model,
                system_prompt=item.system_prompt,
                created_at=item.created_at or now,
                updated_at=item.updated_at or item.created_at or now,
                pinned_at=now if item.pinned else None,
                archived_at=now if item.archived else None,
                **item.params,
            )
            messages = Message.objects.bulk_create(
                [
                    Message(
                        conversation=conversation,
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
                    for message in item.messages
                ]
            )
            # The tree's links need the ids just given: set them in a second statement.
            linked = []
            for message, source in zip(messages, item.messages, strict=True):
                if source.parent is not None:
                    message.parent_id = messages[source.parent].pk
                    linked.append(message)
            Message.objects.bulk_update(linked, ["parent"], batch_size=500)
            if item.current is not None:
                conversation.current_message_id = messages[item.current].pk
            # A title chatsite took from the first question is automatic here too (see title_source).
            first = next((m for m in messages if m.parent_id is None and m.role == Message.Role.USER), None)
            if first is not None and item.title and item.title == title_from(first.content):
                conversation.title_source = first
            if conversation.current_message_id or conversation.title_source_id:
                conversation.save(update_fields=["current_message", "title_source"])
            stored.append(conversation)
    return stored
