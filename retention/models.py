"""How long the site keeps what people wrote, and the record of every retention run."""

from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone

_DAYS_HELP = "Days. Blank: the site default from the environment ({env}). 0: keep forever."


class RetentionPolicy(models.Model):
    """The site's retention periods: one row, edited in the admin. A blank field falls back to
    its environment variable, so the admin's value wins whenever one is set."""

    conversation_days = models.PositiveIntegerField(
        "delete conversations not updated for",
        null=True,
        blank=True,
        help_text=_DAYS_HELP.format(env="RETENTION_CONVERSATION_DAYS"),
    )
    trash_days = models.PositiveIntegerField(
        "delete conversations in the trash for",
        null=True,
        blank=True,
        help_text=_DAYS_HELP.format(env="RETENTION_TRASH_DAYS"),
    )
    usage_content_days = models.PositiveIntegerField(
        "unlink usage rows from messages older than",
        null=True,
        blank=True,
        help_text=_DAYS_HELP.format(env="RETENTION_USAGE_CONTENT_DAYS")
        + " The usage rows themselves are kept for accounting.",
    )

    class Meta:
        verbose_name = verbose_name_plural = "retention policy"

    def __str__(self) -> str:
        return "Retention policy"


class GroupRetention(models.Model):
    """A group's own conversation period, instead of the site's for its members."""

    group = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="retention")
    conversation_days = models.PositiveIntegerField(
        "delete conversations not updated for",
        help_text="Days. 0: keep forever. A person in several groups keeps their conversations for the longest.",
    )

    class Meta:
        verbose_name = "group retention"

    def __str__(self) -> str:
        return f"Retention of {self.group}"


class RetentionRun(models.Model):
    """One `manage.py apply_retention`: when, what it removed (or would have, on a dry run), and how it ended."""

    started_at = models.DateTimeField(default=timezone.now, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)
    dry_run = models.BooleanField(default=False, editable=False)
    conversations = models.PositiveIntegerField("old conversations", default=0, editable=False)
    trash = models.PositiveIntegerField("from the trash", default=0, editable=False)
    messages = models.PositiveIntegerField(default=0, editable=False)
    share_links = models.PositiveIntegerField(default=0, editable=False)
    usage_unlinked = models.PositiveIntegerField("usage rows unlinked", default=0, editable=False)
    # Conversations old enough to go that were kept because a reply in them was still being written.
    skipped_generating = models.PositiveIntegerField("kept (reply generating)", default=0, editable=False)
    error = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = "retention run"

    def __str__(self) -> str:
        return f"Retention run of {self.started_at:%Y-%m-%d %H:%M}" + (" (dry run)" if self.dry_run else "")
