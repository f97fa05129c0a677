"""Turn a stored conversation into the `messages` list of a chat completion request."""

from conversations.models import Conversation, Message


def build_messages(conversation: Conversation, *, before: Message | None = None) -> list[dict]:
    """System prompt first, then the complete messages in order (up to `before`, exclusive)."""
    payload = []
    if conversation.system_prompt.strip():
        payload.append({"role": Message.Role.SYSTEM.value, "content": conversation.system_prompt})
    # Failed and pending replies are left out, and so are empty ones, which upstreams reject.
    history = conversation.messages.filter(status=Message.Status.COMPLETE).exclude(content="").order_by("id")
    if before is not None:
        history = history.filter(id__lt=before.id)
    payload.extend({"role": role, "content": content} for role, content in history.values_list("role", "content"))
    return payload
