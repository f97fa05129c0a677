"""Writes of the conversations domain: starting chats, sending messages, retrying replies.

The person's message is committed before the upstream is called, and the assistant's
message is stored as `pending` first and then as `complete` or `error`: whatever happens
to the upstream call or to this process, nothing the person wrote is lost.
"""

import logging
import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations import llm
from conversations.models import TITLE_LENGTH, Conversation, Message
from conversations.payload import build_messages

logger = logging.getLogger(__name__)

UNEXPECTED_ERROR = (
    "chatsite hit an unexpected error while asking the model. Press Retry; if it keeps failing, "
    "an admin will find the details in the server log."
)


class ChatError(Exception):
    """A request the chat cannot carry out, with a message fit to show the person."""


def conversation_start(
    *, owner, content: str, model: str, settings: dict | None = None, client_id: uuid.UUID | None = None
) -> tuple[Message, Message, bool]:
    """Create a conversation from its first message, then ask the upstream for a reply.

    Returns (user message, assistant message, created), as `message_send` does.
    """
    content = _clean(content)
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(owner=owner, model=model, **(settings or {}))
            user_message, assistant_message = _store_turn(conversation, content, client_id)
    except IntegrityError:
        user_message, assistant_message = _stored_turn(owner=owner, client_id=client_id)
        return user_message, assistant_message, False
    _complete(assistant_message, conversation)
    return user_message, assistant_message, True


def message_send(
    *, conversation: Conversation, content: str, client_id: uuid.UUID | None = None
) -> tuple[Message, Message, bool]:
    """Store the person's message, then ask the upstream for a reply.

    Returns (user message, assistant message, created). When `client_id` was already used
    (a double submit), the stored pair is returned and nothing is sent upstream again.
    """
    content = _clean(content)
    try:
        with transaction.atomic():
            user_message, assistant_message = _store_turn(conversation, content, client_id)
    except IntegrityError:
        user_message, assistant_message = _stored_turn(owner=conversation.owner, client_id=client_id)
        if user_message.conversation_id != conversation.pk:
            raise ChatError("This message was already sent in another conversation.") from None
        return user_message, assistant_message, False
    _complete(assistant_message, conversation)
    return user_message, assistant_message, True


def conversation_update_settings(*, conversation: Conversation, settings: dict) -> Conversation:
    """Store a conversation's system prompt and generation parameters."""
    for name, value in settings.items():
        setattr(conversation, name, value)
    conversation.save(update_fields=list(settings))
    return conversation


def message_retry(*, message: Message) -> Message:
    """Ask the upstream again for a failed (or abandoned) assistant message, in its place."""
    if not message.can_retry:
        raise ChatError("Only a failed reply can be retried.")
    # Compare-and-set, so two Retry clicks make one upstream call.
    claimed = Message.objects.filter(pk=message.pk, status=message.status, updated_at=message.updated_at).update(
        status=Message.Status.PENDING, error="", error_code="", updated_at=timezone.now()
    )
    message.refresh_from_db()
    if claimed:
        _complete(message, message.conversation)
    return message


def _clean(content: str) -> str:
    content = content.strip()
    if not content:
        raise ChatError("Type a message first.")
    return content


def _store_turn(conversation: Conversation, content: str, client_id) -> tuple[Message, Message]:
    # Runs inside the caller's transaction: both messages are committed before any upstream call.
    user_message = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, content=content, client_id=client_id
    )
    assistant_message = Message.objects.create(
        conversation=conversation, role=Message.Role.ASSISTANT, status=Message.Status.PENDING, model=conversation.model
    )
    fields = {"updated_at": timezone.now()}
    if not conversation.title:
        fields["title"] = _title_from(content)
    Conversation.objects.filter(pk=conversation.pk).update(**fields)
    for name, value in fields.items():
        setattr(conversation, name, value)
    return user_message, assistant_message


def _stored_turn(*, owner, client_id) -> tuple[Message, Message | None]:
    user_message = (
        Message.objects.select_related("conversation").filter(conversation__owner=owner, client_id=client_id).first()
    )
    if user_message is None:
        raise ChatError("This message could not be stored. Reload the page and send it again.")
    assistant_message = (
        Message.objects.filter(
            conversation_id=user_message.conversation_id, id__gt=user_message.id, role=Message.Role.ASSISTANT
        )
        .order_by("id")
        .first()
    )
    return user_message, assistant_message


def _complete(message: Message, conversation: Conversation) -> None:
    try:
        completion = llm.chat_completion(
            messages=build_messages(conversation, before=message),
            model=conversation.model,
            params=conversation.generation_params(),
        )
    except llm.UpstreamError as error:
        _fail(message, error.message, code=error.code)
        return
    except Exception:
        # A bug of ours must not leave the reply pending forever: label it and offer Retry.
        logger.exception("asking the upstream for message %s failed unexpectedly", message.pk)
        _fail(message, UNEXPECTED_ERROR, code="internal")
        return
    message.status = Message.Status.COMPLETE
    message.content = completion.content
    message.finish_reason = completion.finish_reason
    message.model = completion.model
    message.upstream_id = completion.response_id
    message.latency_ms = completion.latency_ms
    message.prompt_tokens = completion.usage.get("prompt_tokens")
    message.completion_tokens = completion.usage.get("completion_tokens")
    message.total_tokens = completion.usage.get("total_tokens")
    message.error = ""
    message.error_code = ""
    message.save()


def _fail(message: Message, text: str, *, code: str) -> None:
    message.status = Message.Status.ERROR
    message.error = text
    message.error_code = code
    message.save(update_fields=["status", "error", "error_code", "updated_at"])


def _title_from(content: str) -> str:
    title = " ".join(content.split())
    return title if len(title) <= TITLE_LENGTH else title[: TITLE_LENGTH - 1].rstrip() + "…"
