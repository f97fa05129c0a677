"""Whether a conversation's model-made title (generation/titles.retitle) is there, may still come, or will
not: the chat page asks for it while it may come, so the title appears without a reload."""

from django.conf import settings
from django.utils import timezone

from conversations.models import Conversation, Message

# How long after the first reply ended its model-made title is still looked for.
TITLE_WAIT_SECONDS = 30

TITLE_MADE, TITLE_AWAITED, TITLE_NONE = "made", "awaited", "none"


def title_state(conversation: Conversation, *, question: Message | None = None, reply: Message | None = None) -> str:
    """Whether the conversation's model-made title is there (TITLE_MADE), may still come
    (TITLE_AWAITED: its first reply is being written, or ended less than TITLE_WAIT_SECONDS ago),
    or will not come (TITLE_NONE: no title model, renamed, or the call gave nothing)."""
    source = conversation.title_source_id
    if not settings.CHAT_AUTO_TITLE_MODEL or source is None:
        return TITLE_NONE
    if question is None or question.pk != source:
        made = Message.objects.filter(pk=source, role=Message.Role.ASSISTANT).exists()
        if made:
            return TITLE_MADE
        question = Message.objects.filter(pk=source, parent__isnull=True, role=Message.Role.USER).first()
        if question is None:
            return TITLE_NONE
    if reply is None:
        reply = question.children.filter(role=Message.Role.ASSISTANT).order_by("id").first()
    if reply is None or reply.role != Message.Role.ASSISTANT:
        return TITLE_NONE
    if reply.status in Message.IN_PROGRESS:
        return TITLE_AWAITED if not reply.is_stale else TITLE_NONE
    waited = (timezone.now() - reply.updated_at).total_seconds()
    return TITLE_AWAITED if reply.status == Message.Status.COMPLETE and waited < TITLE_WAIT_SECONDS else TITLE_NONE
