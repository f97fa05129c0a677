"""Turn a stored conversation into the `messages` list of a chat completion request."""

from conversations.models import Conversation, Message
from conversations.selectors import message_path


def build_messages(conversation: Conversation, *, upto: Message | None) -> list[dict]:
    """System prompt first, then the branch from the root to `upto` (inclusive), in order.

    Only the branch is sent, never the alternatives beside it. Failed and unfinished replies
    are left out, and so are empty ones, which upstreams reject.
    """
    payload = []
    if conversation.system_prompt.strip():
        payload.append({"role": Message.Role.SYSTEM.value, "content": conversation.system_prompt})
    if upto is None:
        return payload
    for message in message_path(conversation, upto=upto.pk):
        if message.status in Message.USABLE and message.content:
            payload.append({"role": message.role, "content": message.content})
    return payload
