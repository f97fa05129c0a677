"""Reads of the conversations domain."""

from conversations.models import Conversation

SIDEBAR_LIMIT = 50


def sidebar_conversations(owner) -> list[Conversation]:
    """The owner's most recently active conversations, newest first."""
    return list(Conversation.objects.filter(owner=owner).only("id", "title", "updated_at")[:SIDEBAR_LIMIT])
