from django.conf import settings
from django.core.cache import cache
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from conversations import markdown
from conversations.links import url_for
from conversations.llm import PARAMETER_BOUNDS

TITLE_LENGTH = 80


def title_from(text: str) -> str:
    """`text` on one line, cut at a word boundary to fit a conversation's title."""
    title = " ".join(text.split())
    if len(title) <= TITLE_LENGTH:
        return title
    cut = title[: TITLE_LENGTH - 1]
    if " " in cut and title[TITLE_LENGTH - 1] != " ":
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:-") + "…"


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
    # What an automatic title was made from: the first question, or (a model-made title) the
    # first reply. Null when the owner chose the title (or it was imported). A share link shows
    # the title only while this message is on the shared branch (selectors.shared_page).
    title_source = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    system_prompt = models.TextField(blank=True)
    model = models.CharField(max_length=200)
    # Generation parameters: null means "not set", and then nothing is sent upstream.
    temperature = models.FloatField(null=True, blank=True, validators=_bounded("temperature"))
    top_p = models.FloatField(null=True, blank=True, validators=_bounded("top_p"))
    max_tokens = models.PositiveIntegerField(null=True, blank=True, validators=_bounded("max_tokens"))
    # The last message of the branch the person is looking at (see Message.parent).
    current_message = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)
    # History: pinned conversations come first in the sidebar, archived ones leave it, and
    # deleted ones wait in the trash (undo) until `manage.py purge_trash` removes them.
    pinned_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Set while an import is storing this conversation, in batches (services.conversation_import).
    # Staged rows also have deleted_at set, so every page already leaves them out; the import
    # clears both in one statement once the whole file is stored.
    import_batch = models.UUIDField(null=True, blank=True, editable=False)
    # The model an imported file named, when this site does not offer it: information only.
    imported_model = models.CharField(max_length=200, blank=True, editable=False)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-updated_at", "-id"], name="conversation_owner_recent"),
            # One partial index per sidebar list, so each page is a short index range scan
            # however many conversations the owner has in the other lists.
            models.Index(
                fields=["owner", "-updated_at", "-id"],
                name="conversation_sidebar",
                condition=models.Q(deleted_at__isnull=True, archived_at__isnull=True, pinned_at__isnull=True),
            ),
            models.Index(
                fields=["owner", "-updated_at", "-id"],
                name="conversation_pinned",
                condition=models.Q(deleted_at__isnull=True, pinned_at__isnull=False),
            ),
            models.Index(
                fields=["owner", "-updated_at", "-id"],
                name="conversation_archived",
                condition=models.Q(deleted_at__isnull=True, archived_at__isnull=False),
            ),
            models.Index(
                fields=["deleted_at"], name="conversation_trash", condition=models.Q(deleted_at__isnull=False)
            ),
            models.Index(
                fields=["import_batch"],
                name="conversation_import_batch",
                condition=models.Q(import_batch__isnull=False),
            ),
        ]
        constraints = [_check_bounds(name) for name in PARAMETER_BOUNDS]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"

    def get_absolute_url(self) -> str:
        return url_for("conversations:detail", self.pk)

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
        PENDING = "pending", "Pending"  # stored, waiting for the first chunk
        STREAMING = "streaming", "Streaming"
        STOPPED = "stopped", "Stopped"  # the person pressed Stop; the text so far is kept
        INTERRUPTED = "interrupted", "Interrupted"  # chatsite stopped mid-reply; the text so far is kept
        ERROR = "error", "Error"

    IN_PROGRESS = (Status.PENDING, Status.STREAMING)
    # Replies whose text belongs in the conversation sent upstream.
    USABLE = (Status.COMPLETE, Status.STOPPED, Status.INTERRUPTED)

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    # Messages form a tree: Regenerate and Edit add a sibling under the same parent.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    # The content rendered from Markdown and sanitised, kept so a page does not render it again.
    content_html = models.TextField(blank=True, editable=False)
    html_version = models.PositiveSmallIntegerField(default=0, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    # Set by the browser for each composed message, so a double submit stores it once.
    client_id = models.UUIDField(null=True, blank=True, editable=False)
    model = models.CharField(max_length=200, blank=True, help_text="The model that answered.")
    finish_reason = models.CharField(max_length=32, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    total_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    first_token_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Time to the first streamed text.")
    # Earlier messages of the branch left out of the request to fit the model's context window.
    context_omitted = models.PositiveIntegerField(default=0, editable=False)
    stop_requested = models.BooleanField(default=False, editable=False)
    upstream_id = models.CharField(max_length=200, blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        # parent too, so the shape of a conversation's tree (selectors._Tree: id and parent of
        # every message, in order) is read from the index alone.
        indexes = [models.Index(fields=["conversation", "id", "parent"], name="message_tree_order")]
        constraints = [
            models.UniqueConstraint(
                fields=["client_id"], condition=models.Q(client_id__isnull=False), name="message_client_id_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"

    @property
    def html(self) -> SafeString:
        """The content as safe HTML (see conversations.markdown), rendered once and stored."""
        if self.html_version != markdown.VERSION:
            self.content_html, self.html_version = markdown.render(self.content), markdown.VERSION
            # Stored only if the text is still the one rendered (a streaming reply moves on).
            Message.objects.filter(pk=self.pk, content=self.content).update(
                content_html=self.content_html, html_version=self.html_version
            )
        return mark_safe(self.content_html)  # noqa: S308 - sanitised by nh3 with an allow-list

    @property
    def in_progress(self) -> bool:
        return self.status in self.IN_PROGRESS and not self.is_stale

    @property
    def is_stale(self) -> bool:
        """An unfinished reply not touched for longer than any upstream call could take: its worker died."""
        # Retries may keep a reply pending for up to the turn's budget before any text arrives.
        limit = max(settings.AIMLAPI_CONNECT_TIMEOUT + settings.AIMLAPI_TIMEOUT, settings.AIMLAPI_TURN_BUDGET) + 30
        return self.status in self.IN_PROGRESS and (timezone.now() - self.updated_at).total_seconds() > limit

    @property
    def can_retry(self) -> bool:
        failed = self.status in (self.Status.ERROR, self.Status.INTERRUPTED) or self.is_stale
        return self.role == self.Role.ASSISTANT and failed

    @property
    def cut_off(self) -> bool:
        return self.finish_reason == "length"


DEFAULT_BASE_URL = "https://api.aimlapi.com/v1"


# The catalogue is read from the cache by conversations.selectors.chat_catalogue.
CATALOGUE_CACHE_KEY = "chatsite:chat-model-catalogue"


def _forget_catalogue() -> None:
    cache.delete(CATALOGUE_CACHE_KEY)


class ChatModel(models.Model):
    """A model the chat page offers: the catalogue admins keep."""

    model_id = models.CharField("upstream model id", max_length=200, unique=True)
    display_name = models.CharField(max_length=100)
    context_window = models.PositiveIntegerField(default=32000, help_text="Tokens: the prompt plus the reply.")
    default_params = models.JSONField(
        "default parameters",
        default=dict,
        blank=True,
        help_text='Sent when a chat leaves them blank, e.g. {"temperature": 0.7}. Allowed: '
        + ", ".join(PARAMETER_BOUNDS)
        + ".",
    )
    enabled = models.BooleanField(default=True, help_text="Offered for new messages.")

    class Meta:
        ordering = ["display_name", "model_id"]

    def __str__(self) -> str:
        return self.display_name or self.model_id

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        _forget_catalogue()

    def delete(self, *args, **kwargs):
        result = super().delete(*args, **kwargs)
        _forget_catalogue()
        return result

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from conversations.llm import validate_params

        if not isinstance(self.default_params, dict):
            raise ValidationError({"default_params": 'Give a JSON object, e.g. {} or {"temperature": 0.7}.'})
        try:
            validate_params(self.default_params)
        except ValueError as error:
            raise ValidationError({"default_params": str(error)}) from None
        max_tokens = self.default_params.get("max_tokens")
        if isinstance(max_tokens, int) and max_tokens > self.context_window:
            raise ValidationError({"default_params": "max_tokens cannot exceed the context window."})


HTTP_URL = URLValidator(schemes=["http", "https"], message="Enter an http:// or https:// address.", code="http_only")


class ProviderKey(models.Model):
    """An upstream API key, stored encrypted (conversations.keys) and never shown again."""

    label = models.CharField(max_length=100, unique=True)
    # Only http(s): the server itself calls this address, so no file:, ftp: or other scheme.
    base_url = models.URLField("base URL", max_length=300, default=DEFAULT_BASE_URL, validators=[HTTP_URL])
    # A Fernet token; see conversations.keys. The plain key is never stored.
    secret_encrypted = models.TextField(editable=False)
    last4 = models.CharField(max_length=4, editable=False, help_text="The last 4 characters, to tell keys apart.")
    enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(
        "site default", default=False, help_text="Used by everyone without a key of their own or of their group."
    )
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="provider_keys")
    groups = models.ManyToManyField("auth.Group", blank=True, related_name="provider_keys")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["label"]
        verbose_name = "upstream API key"

    def __str__(self) -> str:
        return self.label

    @property
    def masked(self) -> str:
        return f"••••{self.last4}"


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
    key = models.ForeignKey(ProviderKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="usage")
    key_label = models.CharField(max_length=100, blank=True, help_text="The key's label when the call was made.")
    model = models.CharField(max_length=200)
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(null=True, blank=True, help_text="From the request to the last byte.")
    first_token_ms = models.PositiveIntegerField(null=True, blank=True, help_text="From the request to the first text.")
    # The upstream sent no token counts (a stopped reply, or a server that sends none in
    # streams): the counts are conversations.tokens' estimate from the text.
    tokens_estimated = models.BooleanField("estimated", default=False)
    status = models.CharField(max_length=16, choices=Status.choices)
    error_code = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "usage"
        indexes = [
            # total_tokens too, so the quota check reads the index alone (see bench/README.md).
            models.Index(fields=["user", "created_at", "total_tokens"], name="usage_user_time"),
            models.Index(fields=["created_at"], name="usage_time"),
        ]

    def __str__(self) -> str:
        return f"{self.model} · {self.total_tokens} tokens · {self.status}"


class ShareLink(models.Model):
    """A read-only public link to one conversation's current branch, until its owner revokes it."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="share_links")
    token = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["conversation", "revoked_at"], name="share_conversation")]

    def __str__(self) -> str:
        return f"Share of {self.conversation_id}"

    def get_absolute_url(self) -> str:
        return reverse("conversations:shared", args=[self.token])
