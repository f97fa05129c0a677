from django.conf import settings
from django.db import models
from django.utils import timezone

from conversations.models import Message

REASON_LENGTH = 500


class Feedback(models.Model):
    """A person's 👍 or 👎 on one reply of their conversation, with an optional reason."""

    class Rating(models.TextChoices):
        UP = "up", "👍 Good"
        DOWN = "down", "👎 Bad"

    class Category(models.TextChoices):
        # Keys are stored comma-joined in `categories`: none is a substring of another.
        WRONG = "wrong", "Not accurate"
        UNHELPFUL = "unhelpful", "Not helpful"
        IGNORED = "ignored", "Did not follow instructions"
        HARMFUL = "harmful", "Unsafe or offensive"
        LENGTH = "length", "Too long or too short"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="feedback")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="feedback")
    rating = models.CharField(max_length=8, choices=Rating.choices)
    categories = models.CharField(max_length=200, blank=True, help_text="Comma-separated category keys.")
    reason = models.CharField(max_length=REASON_LENGTH, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "feedback"
        ordering = ["-updated_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["message", "user"], name="feedback_one_per_person")]
        permissions = [("export_feedback", "Can export feedback as CSV, with the messages it is about")]

    def __str__(self) -> str:
        return f"{self.get_rating_display()} on message {self.message_id}"

    @property
    def category_keys(self) -> list[str]:
        return [key for key in self.categories.split(",") if key]

    def category_labels(self) -> list[str]:
        labels = dict(self.Category.choices)
        return [labels.get(key, key) for key in self.category_keys]
