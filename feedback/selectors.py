"""Reads of feedback: a person's own ratings for the chat page, and the admin's counts per model."""

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from feedback.models import Feedback


def feedback_by_message(user, conversation_id: int) -> dict[int, Feedback]:
    """The person's feedback on the replies of one conversation, by message id: one query for a page."""
    rows = Feedback.objects.filter(user=user, message__conversation_id=conversation_id)
    return {feedback.message_id: feedback for feedback in rows}


def feedback_of(*, message, user) -> Feedback | None:
    """The person's feedback on a reply, if any."""
    return Feedback.objects.filter(message=message, user=user).first()


@dataclass(frozen=True)
class ModelCounts:
    model: str
    up: int
    down: int

    @property
    def total(self) -> int:
        return self.up + self.down


def counts_per_model(rows: QuerySet[Feedback]) -> list[ModelCounts]:
    """👍 and 👎 per model that wrote the rated replies, most rated first."""
    totals = (
        rows.values("message__model")
        .annotate(
            up=Count("id", filter=Q(rating=Feedback.Rating.UP)), down=Count("id", filter=Q(rating=Feedback.Rating.DOWN))
        )
        .order_by("message__model")
    )
    counts = [ModelCounts(row["message__model"] or "(unknown)", row["up"], row["down"]) for row in totals]
    return sorted(counts, key=lambda row: -row.total)
