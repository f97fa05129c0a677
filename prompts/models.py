from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from prompts import variables

TITLE_LENGTH = 100
COMMAND_LENGTH = 32
BODY_LENGTH = 20_000


class Prompt(models.Model):
    """A reusable text with `{{variables}}`, found by its command in the composer's `/` picker."""

    class Audience(models.TextChoices):
        PERSONAL = "personal", "Only me"
        GROUP = "group", "A group I am in"
        SITE = "site", "Everyone on this site"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="prompts")
    title = models.CharField(max_length=TITLE_LENGTH)
    command = models.CharField(max_length=COMMAND_LENGTH, help_text="Typed after / in the composer.")
    body = models.TextField(max_length=BODY_LENGTH)
    audience = models.CharField(max_length=8, choices=Audience.choices, default=Audience.PERSONAL)
    # A group that is deleted leaves its prompts with their owner alone (nothing is lost):
    # a group prompt without a group is seen by its owner only, until shared again.
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="prompts")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["command", "pk"]
        permissions = [("share_site_wide", "Can share prompts with everyone on the site")]
        # A command is unique within its audience: among one person's own prompts, among one
        # group's, and among the site's. The same command in two audiences is allowed; the
        # picker then shows both, each with its audience.
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "command"],
                condition=Q(audience="personal"),
                name="prompt_command_per_owner",
                violation_error_message="This person already has a prompt with this command.",
            ),
            models.UniqueConstraint(
                fields=["group", "command"],
                condition=Q(audience="group"),
                name="prompt_command_per_group",
                violation_error_message="This group already has a prompt with this command.",
            ),
            models.UniqueConstraint(
                fields=["command"],
                condition=Q(audience="site"),
                name="prompt_command_site",
                violation_error_message="The site already has a prompt with this command.",
            ),
            models.CheckConstraint(
                condition=Q(audience="group") | Q(group__isnull=True), name="prompt_group_only_for_group_audience"
            ),
        ]

    def __str__(self) -> str:
        return f"/{self.command} · {self.title}"

    def clean(self) -> None:
        # The admin's form checks the body too; the library's form does it in its own clean_body.
        try:
            variables.parts(self.body or "")
        except variables.VariableError as error:
            raise ValidationError({"body": str(error)}) from error

    @property
    def audience_label(self) -> str:
        """Who sees it, in a few words: "Only me", "Group Research", "Everyone"."""
        if self.audience == self.Audience.SITE:
            return "Everyone"
        if self.audience == self.Audience.GROUP:
            return f"Group {self.group.name}" if self.group_id else "Only me (its group was deleted)"
        return "Only me"
