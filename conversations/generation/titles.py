"""A model-made title for a new conversation, asked for once its first reply is complete."""

import logging

from django.conf import settings

from conversations.generation.calls import Call
from conversations.models import Conversation, Message, title_from
from providers import keys
from providers.upstream import UpstreamError, chat_completion
from usage.models import Usage

logger = logging.getLogger(__name__)

TITLE_PROMPT = (
    "Write a short title (at most 6 words) for the conversation below, in its language. "
    "Answer with the title only: no quotes, no punctuation at the end."
)


def retitle(message_id: int) -> None:
    """With CHAT_AUTO_TITLE_MODEL set: after the first reply, ask that model for a better title.

    The title taken from the first message stays when the call fails, answers nothing
    usable, or the person renamed the conversation meanwhile.
    """
    model = settings.CHAT_AUTO_TITLE_MODEL
    if not model:
        return
    try:
        message = Message.objects.select_related("conversation__owner", "parent").get(pk=message_id)
        question = message.parent
        first_reply = question is not None and question.parent_id is None and message.role == Message.Role.ASSISTANT
        conversation = message.conversation
        if not (first_reply and message.status == Message.Status.COMPLETE):
            return
        if conversation.title != title_from(question.content):
            return  # renamed by the person: theirs wins
        # The owner's key, and a usage row: the title is paid for like the reply.
        key = keys.resolve_key(conversation.owner)
        messages = [
            {"role": "system", "content": TITLE_PROMPT},
            {"role": "user", "content": f"{question.content[:2000]}\n\n---\n\n{message.content[:2000]}"},
        ]
        call = Call(message, key, messages=messages, model=model)
        try:
            completion = chat_completion(
                messages=messages,
                model=model,
                params={"max_tokens": 24, "temperature": 0.2},
                config=key.config(),
            )
        except UpstreamError as error:
            call.failed(error)
            raise
        call.ended(
            Usage.Status.COMPLETE,
            text=completion.content,
            latency_ms=completion.latency_ms,
            first_token_ms=completion.latency_ms,
            **completion.usage,
        )
        title = _clean_title(completion.content)
        if title:
            Conversation.objects.filter(pk=conversation.pk, title=conversation.title).update(
                title=title, title_source=message
            )
    except UpstreamError as error:
        logger.info("no model-made title for message %s: %s", message_id, error)
    except Exception:
        logger.exception("making a title for message %s failed unexpectedly", message_id)


def _clean_title(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    title = lines[0].strip().strip("#*_`\"'“”‘’ ").removeprefix("Title:").strip().strip("\"'“”‘’ ").rstrip(".")
    return title_from(title)
