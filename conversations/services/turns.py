"""Turns: starting chats, sending, retrying, regenerating, editing and stopping replies, and moving
between alternative replies.

The person's message and a `pending` assistant message are committed together before the
upstream is called; the reply is then generated in the background (`generation`), which
saves it as it arrives and ends it as `complete`, `stopped` or `error`. Messages form a
tree: Regenerate and Edit add alternatives beside a message and never change or delete one.
"""

import functools
import operator
import uuid

from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from conversations import generation
from conversations.models import Conversation, Message, title_from
from conversations.payload import DoesNotFit, build_messages, fit_window, request_params
from conversations.selectors import latest_leaf_under
from conversations.services.errors import ChatError, DatabaseBusy, LimitReached
from providers import catalogue
from usage import quotas

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
    """Refuse, before anything is stored, a request for a model that is off, kept from the person
    (the catalogue's groups), or past the person's limits."""
    model = catalogue.offered_model(model, owner)
    if not model:
        raise ChatError("No model is available: an admin needs to enable one under Admin › Chat models.")
    if catalogue.model_is_turned_off(model):
        raise ChatError(
            f"The model {model} has been turned off by an admin, so this message was not sent. "
            "Choose another model in this chat's settings."
        )
    if not catalogue.may_use(owner, model):
        raise ChatError(
            f"The model {model} is kept for some groups on this site, and your account is not in one, "
            "so this message was not sent. Choose another model in this chat's settings, or ask an admin."
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
    *,
    owner,
    content: str,
    model: str,
    settings: dict | None = None,
    client_id: uuid.UUID | None = None,
    temporary: bool = False,
) -> tuple[Message, Message, bool]:
    """Create a conversation from its first message and start its reply; `temporary`: a chat that is not
    kept (services.temporary).

    Returns (user message, assistant message, created), as `message_send` does.
    """
    content = _clean(content)
    if client_id is not None and Message.objects.filter(client_id=client_id).exists():
        return *_stored_turn(owner=owner, client_id=client_id), False  # a double submit: stored once
    _check_can_ask(owner, model)
    _check_fits(Conversation(owner=owner, model=model, **(settings or {})), content)

    def store():
        with transaction.atomic():
            conversation = Conversation.objects.create(
                owner=owner, model=model, temporary=temporary, **(settings or {})
            )
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
            # The repeat is checked first, inside the transaction: a repeat must not be refused
            # because the first submit's reply is now being written.
            repeated, parent = _repeat_and_parent(conversation, client_id=client_id, parent_id=parent_id)
            if repeated:
                return *_repeated_turn(conversation, client_id), False
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
    generation.stop(message.pk)


def replies_stop(*, owner) -> int:
    """Stop every reply being written for `owner` (their access ended), wherever it is generated;
    each keeps its text so far and is marked stopped. Returns how many were asked to stop."""
    writing = Message.objects.filter(conversation__owner=owner, status__in=Message.IN_PROGRESS)
    message_ids = list(writing.values_list("pk", flat=True))
    Message.objects.filter(pk__in=message_ids, status__in=Message.IN_PROGRESS).update(stop_requested=True)
    for message_id in message_ids:
        generation.stop(message_id)
    return len(message_ids)


def conversation_switch(*, conversation: Conversation, message: Message) -> Conversation:
    """Show the branch through `message` (one of the "2/3" alternatives), down to its newest reply."""
    conversation.current_message_id = latest_leaf_under(conversation, message.pk)
    conversation.save(update_fields=["current_message"])
    return conversation


def _clean(content: str) -> str:
    content = content.strip()
    if not content:
        raise ChatError("Type a message first.")
    return content


def _repeat_and_parent(
    conversation: Conversation, *, client_id: uuid.UUID | None, parent_id: int | None
) -> tuple[bool, Message | None]:
    """Whether `client_id` was already stored (a repeated submit), and else the message the new one
    answers (`parent_id`, by default the current message), checked; both read in one query."""
    if parent_id is None:
        parent_id = conversation.current_message_id
    wanted = [Q(pk=parent_id, conversation=conversation)] if parent_id is not None else []
    if client_id is not None:
        wanted.append(Q(client_id=client_id))  # unique: with the parent, at most two rows
    rows = list(Message.objects.filter(functools.reduce(operator.or_, wanted)).order_by()) if wanted else []
    if client_id is not None and any(row.client_id == client_id for row in rows):
        return True, None
    if parent_id is None:
        return False, None
    parent = next((row for row in rows if row.pk == parent_id and row.conversation_id == conversation.pk), None)
    if parent is None:
        raise ChatError("The message you answered is not in this conversation any more. Reload the page.")
    if parent.in_progress:
        raise ChatError("Wait for the reply to finish, or press Stop.")
    return False, parent


def _store_turn(conversation: Conversation, content: str, *, parent, client_id) -> tuple[Message, Message]:
    # Runs inside the caller's transaction: both messages are committed before any upstream call.
    user_message = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, content=content, client_id=client_id, parent=parent
    )
    return user_message, _store_reply(conversation, parent=user_message)


def _store_reply(conversation: Conversation, *, parent: Message) -> Message:
    """A pending reply under `parent`, made the current message; generated once committed."""
    model = catalogue.offered_model(conversation.model, conversation.owner)
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
        fields["title"], fields["title_source"] = title_from(parent.content), parent
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
