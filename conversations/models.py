from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from common.links import url_for
from conversations import markdown
from providers.params import PARAMETER_BOUNDS

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


def rendered_html(content: str) -> dict:
    """A message's stored HTML fields for `content`: written whenever the content is."""
    return {"content_html": markdown.render(content), "html_version": markdown.VERSION}


def _bounded(name: str) -> list:
    low, high = PARAMETER_BOUNDS[name]
    return [MinValueValidator(low), MaxValueValidator(high)]


def _check_bounds(name: str) -> models.CheckConstraint:
    low, high = PARAMETER_BOUNDS[name]
    return models.CheckConstraint(
        condition=models.Q(**{f"{name}__isnull": True}) | models.Q(**{f"{name}__gte": low, f"{name}__lte": high}),
        name=f"conversation_{name}_in_bounds",
    )


FOLDER_NAME_LENGTH = 60


class Folder(models.Model):
    """A person's folder of conversations (one level); `collapsed` is how the sidebar last showed it."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_folders")
    name = models.CharField(max_length=FOLDER_NAME_LENGTH)
    collapsed = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="folder_owner_name_unique")]

    def __str__(self) -> str:
        return self.name


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
    # A deleted folder leaves its conversations in the main list.
    folder = models.ForeignKey(Folder, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations")
    # A temporary chat is never listed, searched, exported or shared, and is deleted with its
    # messages when its owner leaves it or TEMPORARY_CHAT_HOURS after its last activity
    # (services.temporary: never while a reply is being written).
    temporary = models.BooleanField(default=False, editable=False)

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
            models.Index(fields=["owner"], name="conversation_temporary", condition=models.Q(temporary=True)),
            models.Index(
                fields=["folder", "-updated_at", "-id"],
                name="conversation_filed",
                condition=models.Q(deleted_at__isnull=True, archived_at__isnull=True, pinned_at__isnull=True),
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

    def validate_constraints(self, exclude=None) -> None:
        # The bounds' constraints are the fields' own validators too, which full_clean runs: having
        # the database evaluate them again would cost a query each on every new chat's settings form.
        super().validate_constraints(exclude={*(exclude or ()), *PARAMETER_BOUNDS})

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
    # The content rendered from Markdown and sanitised, written with it (rendered_html), so a page
    # does not render it again; html_version 0 while a streaming reply's HTML waits for its final save.
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

    def save(self, *args, **kwargs):
        # The HTML is written with the content, so a page only reads it (see `html`).
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "content" in update_fields:
            for name, value in rendered_html(self.content).items():
                setattr(self, name, value)
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "content_html", "html_version"}
        super().save(*args, **kwargs)

    @property
    def html(self) -> SafeString:
        """The content as safe HTML (see conversations.markdown), as stored with it.

        Stored HTML from an older renderer, until `manage.py rerender_messages` has rewritten it,
        is rendered again for the page and not stored: a page never writes.
        """
        if self.html_version == markdown.VERSION:
            return mark_safe(self.content_html)  # noqa: S308 - sanitised by nh3 with an allow-list
        return mark_safe(markdown.render(self.content))  # noqa: S308 - as above

    @property
    def in_progress(self) -> bool:
        return self.status in self.IN_PROGRESS and not self.is_stale

    @property
    def is_stale(self) -> bool:
        """An unfinished reply not touched for longer than any upstream call could take: its worker died."""
        return self.status in self.IN_PROGRESS and timezone.now() - self.updated_at > self.stale_after()

    @staticmethod
    def stale_after() -> timedelta:
        """How long an unfinished reply may go untouched while its worker still writes it."""
        # Retries may keep a reply pending for up to the turn's budget before any text arrives.
        limit = max(settings.AIMLAPI_CONNECT_TIMEOUT + settings.AIMLAPI_TIMEOUT, settings.AIMLAPI_TURN_BUDGET) + 30
        return timedelta(seconds=limit)

    @property
    def can_retry(self) -> bool:
        failed = self.status in (self.Status.ERROR, self.Status.INTERRUPTED) or self.is_stale
        return self.role == self.Role.ASSISTANT and failed

    @property
    def cut_off(self) -> bool:
        return self.finish_reason == "length"


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
