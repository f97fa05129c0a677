"""Share links: a conversation's public read-only address, until its owner revokes it."""

import secrets

from django.utils import timezone

from conversations.models import Conversation, ShareLink
from conversations.services.errors import ChatError


def share_create(*, conversation: Conversation) -> ShareLink:
    """The conversation's public read-only link: the existing one, or a new unguessable token.

    A temporary chat is refused (ChatError): it is deleted when its owner leaves it."""
    if conversation.temporary:
        raise ChatError("A temporary chat cannot be shared: it is deleted when you leave it.")
    existing = conversation.share_links.filter(revoked_at__isnull=True).first()
    if existing is not None:
        return existing
    return ShareLink.objects.create(conversation=conversation, token=secrets.token_urlsafe(32))


def share_revoke(*, conversation: Conversation) -> int:
    """Make every share link of the conversation stop working; returns how many were active."""
    return conversation.share_links.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
