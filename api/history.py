"""Optional history: an API exchange saved as a conversation the person sees in the sidebar.

Only with `"store": true` or a token that asks for it; otherwise the usage row is all that is
kept. The person's messages are committed before the upstream is asked (as on the chat page), and
the reply is added when it has ended: complete, stopped, or an error labelled as on the page.
"""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from api.body import ChatRequest
from conversations.models import Conversation, Message, title_from
from providers import wording
from providers.upstream import UpstreamConfig, UpstreamError
from usage.models import Usage

_STATUS = {
    Usage.Status.COMPLETE: Message.Status.COMPLETE,
    Usage.Status.STOPPED: Message.Status.STOPPED,
    Usage.Status.ERROR: Message.Status.ERROR,
}


@dataclass
class Turn:
    conversation: Conversation
    last: Message


def turn_start(*, owner, chat: ChatRequest) -> Turn:
    """A new conversation holding the request's messages; system messages become its system prompt."""
    said = [m for m in chat.messages if m["role"] != "system"]
    system = "\n\n".join(m["content"] for m in chat.messages if m["role"] == "system")
    first_question = next((m["content"] for m in said if m["role"] == "user"), "")
    with transaction.atomic():
        conversation = Conversation.objects.create(
            owner=owner,
            model=chat.model,
            system_prompt=system,
            title=title_from(first_question) if first_question else "API request",
            **chat.params,
        )
        last = None
        for message in said:
            last = Message.objects.create(
                conversation=conversation, role=message["role"], content=message["content"], parent=last
            )
        if last is None:  # only system messages: the reply still needs a place in the tree
            last = Message.objects.create(conversation=conversation, role=Message.Role.USER, content="(no message)")
        Conversation.objects.filter(pk=conversation.pk).update(current_message=last)
    return Turn(conversation=conversation, last=last)


def turn_end(
    turn: Turn, *, status: str, text: str, error: UpstreamError | None, config: UpstreamConfig, finish: str = ""
) -> Message:
    """The reply under the request's last message, made the conversation's current message."""
    reply = Message.objects.create(
        conversation=turn.conversation,
        role=Message.Role.ASSISTANT,
        parent=turn.last,
        content=text,
        status=_STATUS[status],
        model=turn.conversation.model,
        finish_reason=finish,
        error_code=error.code if error else "",
        error=wording.explain(error, config) if error else "",
    )
    Conversation.objects.filter(pk=turn.conversation.pk).update(current_message=reply, updated_at=timezone.now())
    return reply
