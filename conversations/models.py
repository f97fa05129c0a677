from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from conversations.llm import PARAMETER_BOUNDS

TITLE_LENGTH = 80


def _bounded(name: str) -> list:
    low, high = PARAMETER_BOUNDS[name]
    return [MinValueValidator(low), MaxValueValidator(high)]


def _check_bounds(name: str) -> models.CheckConstraint:
    low, high = PARAMETER_BOUNDS[name]
    return models.CheckConstraint(
        condition=models.Q(**{f"{name}__isnull": True}) | models.Q(**{f"{name}__gte": low, f"{name}__lte": high}),
        name=f"conversation_{name}_in_bounds",
    )


class Conversation(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=TITLE_LENGTH, blank=True)
    system_prompt = models.TextField(blank=True)
    model = models.CharField(max_length=200)
    # Generation parameters: null means "not set", and then nothing is sent upstream.
    temperature = models.FloatField(null=True, blank=True, validators=_bounded("temperature"))
    top_p = models.FloatField(null=True, blank=True, validators=_bounded("top_p"))
    max_tokens = models.PositiveIntegerField(null=True, blank=True, validators=_bounded("max_tokens"))
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [models.Index(fields=["owner", "-updated_at", "-id"], name="conversation_owner_recent")]
        constraints = [_check_bounds(name) for name in PARAMETER_BOUNDS]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("conversations:detail", args=[self.pk])

    @property
    def display_title(self) -> str:
        return self.title or "New chat"

    def generation_params(self) -> dict:
        """The parameters the person set, and only those, as the upstream names them."""
        values = {name: getattr(self, name) for name in PARAMETER_BOUNDS}
        return {name: value for name, value in values.items() if value is not None}


class Message(models.Model):
    class Role(models.TextChoices):
        SYSTEM = "system", "System"
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    class Status(models.TextChoices):
        COMPLETE = "complete", "Complete"
        PENDING = "pending", "Pending"
        ERROR = "error", "Error"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    # Set by the browser for each composed message, so a double submit stores it once.
    client_id = models.UUIDField(null=True, blank=True, editable=False)
    model = models.CharField(max_length=200, blank=True, help_text="The model that answered.")
    finish_reason = models.CharField(max_length=32, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    total_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    upstream_id = models.CharField(max_length=200, blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["conversation", "id"], name="message_conversation_order")]
        constraints = [
            models.UniqueConstraint(
                fields=["client_id"], condition=models.Q(client_id__isnull=False), name="message_client_id_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"

    @property
    def is_stale(self) -> bool:
        """A pending reply older than any upstream call could take: its worker died."""
        limit = settings.AIMLAPI_CONNECT_TIMEOUT + settings.AIMLAPI_TIMEOUT + 30
        return self.status == self.Status.PENDING and (timezone.now() - self.updated_at).total_seconds() > limit

    @property
    def can_retry(self) -> bool:
        return self.role == self.Role.ASSISTANT and (self.status == self.Status.ERROR or self.is_stale)

    @property
    def cut_off(self) -> bool:
        return self.finish_reason == "length"
