"""Personal access tokens: what a person's own tools present at /v1/ instead of a password."""

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "cs-"  # noqa: S105 (a prefix, not a secret); so secret scanners can recognise a chatsite token


class AccessToken(models.Model):
    """One token of one person. Only its SHA-256 is stored: the token itself is shown once."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(max_length=100, help_text="What the person uses it for, e.g. “editor”.")
    # The first characters, to tell tokens apart in a list; not enough to guess the rest.
    prefix = models.CharField(max_length=12, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    store_history = models.BooleanField(
        "save as conversations",
        default=False,
        help_text="Save every exchange made with this token as a conversation in the sidebar.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Blank: it never expires.")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "personal access token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and not self.is_expired
