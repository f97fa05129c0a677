"""Writes of feedback: a person rates a reply of their own conversation, changes or removes it."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations.models import Message
from feedback.models import Feedback

RATEABLE = (Message.Status.COMPLETE, Message.Status.STOPPED)


class FeedbackError(Exception):
    """A rating refused; the message says why."""


def feedback_give(*, message: Message, user, rating: str, categories: list[str], reason: str) -> Feedback:
    """Store the person's rating of a finished reply, replacing the one they gave before."""
    if message.role != Message.Role.ASSISTANT or message.status not in RATEABLE:
        raise FeedbackError("Only a finished reply can be rated.")
    values = {
        "rating": rating,
        "categories": ",".join(categories) if rating == Feedback.Rating.DOWN else "",
        "reason": reason.strip(),
        "updated_at": timezone.now(),
    }
    try:
        with transaction.atomic():
            feedback, _ = Feedback.objects.update_or_create(message=message, user=user, defaults=values)
    except IntegrityError:
        # Two clicks at once: the other request created it first; this one changes it.
        Feedback.objects.filter(message=message, user=user).update(**values)
        feedback = Feedback.objects.get(message=message, user=user)
    return feedback


def feedback_remove(*, message: Message, user) -> None:
    """Take back the person's rating of a reply (nothing to do when there is none)."""
    Feedback.objects.filter(message=message, user=user).delete()
