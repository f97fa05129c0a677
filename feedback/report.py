"""The feedback CSV: each rating with the reply it is about and the person's prompt before it."""

from collections.abc import Iterator

from django.db.models import QuerySet
from django.utils import timezone

from common import spreadsheet
from feedback.models import Feedback

CSV_HEADER = [
    "rated_at",
    "user",
    "model",
    "rating",
    "categories",
    "reason",
    "conversation_id",
    "message_id",
    "prompt",
    "reply",
]


def csv_lines(rows: QuerySet[Feedback]) -> Iterator[str]:
    """The rows as CSV text, one line at a time (for a streaming response); every cell safe to open."""
    return spreadsheet.csv_lines(CSV_HEADER, _values(rows))


def _values(rows: QuerySet[Feedback]) -> Iterator[list]:
    rows = rows.select_related("user", "message__parent").order_by("updated_at", "id")
    for feedback in rows.iterator(chunk_size=500):
        message = feedback.message
        prompt = message.parent.content if message.parent is not None else ""
        yield [
            timezone.localtime(feedback.updated_at).isoformat(timespec="seconds"),
            feedback.user.get_username(),
            message.model,
            feedback.rating,
            "; ".join(feedback.category_labels()),
            feedback.reason,
            message.conversation_id,
            message.pk,
            prompt,
            message.content,
        ]
