"""Reads of retention: what a person's data page shows."""

from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser

from conversations.models import Conversation, Message, ShareLink
from retention.policy import conversation_days_for
from usage.models import Usage


@dataclass(frozen=True)
class MyData:
    """What a person has stored here, and how long it is kept."""

    conversations: int
    messages: int
    share_links: int
    tokens: int
    usage_rows: int
    conversation_days: int  # 0: kept until they delete it


def my_data(*, user: AbstractBaseUser) -> MyData:
    """The counts of the person's own data, as "Delete all my data" would remove it."""
    owned = Conversation.objects.filter(owner=user)
    return MyData(
        conversations=owned.count(),
        messages=Message.objects.filter(conversation__owner=user).count(),
        share_links=ShareLink.objects.filter(conversation__owner=user, revoked_at__isnull=True).count(),
        tokens=user.access_tokens.count(),
        usage_rows=Usage.objects.filter(user=user).count(),
        conversation_days=conversation_days_for(user),
    )
