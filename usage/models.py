"""What the upstream calls cost: one row per call, and each person's token quota."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class UserQuota(models.Model):
    """A person's own token quota; blank fields fall back to the site's default (settings)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_quota")
    daily_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="Tokens per day. Blank: the site default. 0: unlimited."
    )
    monthly_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="Tokens per calendar month. Blank: the site default. 0: unlimited."
    )

    class Meta:
        db_table = "conversations_userquota"  # made by the conversations app, before usage had its own
        verbose_name = "token quota"

    def __str__(self) -> str:
        return f"Quota of {self.user}"


class Usage(models.Model):
    """One upstream call: who made it, with which key and model, what it cost and how it ended."""

    class Status(models.TextChoices):
        COMPLETE = "complete", "Complete"
        STOPPED = "stopped", "Stopped"
        ERROR = "error", "Error"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="usage")
    # Null: the key from the environment (AIMLAPI_API_KEY), or a stored key since deleted.
    key = models.ForeignKey(
        "providers.ProviderKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="usage"
    )
    key_label = models.CharField(max_length=100, blank=True, help_text="The key's label when the call was made.")
    model = models.CharField(max_length=200)
    message = models.ForeignKey(
        "conversations.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(null=True, blank=True, help_text="From the request to the last byte.")
    first_token_ms = models.PositiveIntegerField(null=True, blank=True, help_text="From the request to the first text.")
    # The upstream sent no token counts (a stopped reply, or a server that sends none in
    # streams): the counts are conversations.tokens' estimate from the text.
    tokens_estimated = models.BooleanField("estimated", default=False)

    class Source(models.TextChoices):
        CHAT = "chat", "Chat page"
        API = "api", "API"

    status = models.CharField(max_length=16, choices=Status.choices)
    # Where the call came from: the chat page, or a person's own tool through /v1/ (api/).
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.CHAT)
    error_code = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "conversations_usage"  # made by the conversations app, before usage had its own
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "usage"
        indexes = [
            # total_tokens too, so the quota check reads the index alone (see bench/README.md).
            models.Index(fields=["user", "created_at", "total_tokens"], name="usage_user_time"),
            models.Index(fields=["created_at"], name="usage_time"),
        ]

    def __str__(self) -> str:
        return f"{self.model} · {self.total_tokens} tokens · {self.status}"
