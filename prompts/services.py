"""Writes of the prompt library: create, change, delete, and a prompt made a conversation's system prompt."""

from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations import services as conversation_services
from conversations.models import Conversation
from prompts import access, variables
from prompts.models import Prompt


class PromptError(Exception):
    """A refused write, with the form field it is about (None: the whole form)."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


def prompt_create(
    *, owner: AbstractBaseUser, title: str, command: str, body: str, audience: str, group: Group | None
) -> Prompt:
    """Store a new prompt of `owner`, shared as asked if the owner may share it so."""
    prompt = Prompt(owner=owner)
    return _save(prompt, editor=owner, title=title, command=command, body=body, audience=audience, group=group)


def prompt_update(
    *,
    prompt: Prompt,
    editor: AbstractBaseUser,
    title: str,
    command: str,
    body: str,
    audience: str,
    group: Group | None,
) -> Prompt:
    """Change a prompt (its owner stays who made it); the editor's rights decide the audience."""
    return _save(prompt, editor=editor, title=title, command=command, body=body, audience=audience, group=group)


def prompt_delete(*, prompt: Prompt) -> None:
    """Delete a prompt for everyone it was shared with; conversations keep a system prompt made from it."""
    prompt.delete()


def prompt_use_as_system_prompt(*, prompt: Prompt, conversation: Conversation, values: dict[str, str]) -> Conversation:
    """Fill the prompt's variables and store the text as the conversation's system prompt."""
    try:
        text = variables.fill(prompt.body, values)
    except variables.VariableError as error:
        raise PromptError(str(error)) from error
    return conversation_services.conversation_update_settings(
        conversation=conversation, settings={"system_prompt": text}
    )


def _save(prompt: Prompt, *, editor, title, command, body, audience, group) -> Prompt:
    # One who may change a site prompt may keep it site-wide; making one is the permission's.
    keeps_site = prompt.pk is not None and prompt.audience == Prompt.Audience.SITE
    if audience == Prompt.Audience.SITE and not keeps_site and not access.may_share_site_wide(editor):
        raise PromptError("Only admins, or people they allow, can share a prompt with everyone.", field="audience")
    if audience == Prompt.Audience.GROUP:
        if group is None:
            raise PromptError("Choose the group to share it with.", field="group")
        kept = prompt.pk is not None and prompt.group_id == group.pk
        if not kept and not editor.groups.filter(pk=group.pk).exists():
            raise PromptError("You can share a prompt only with a group you are in.", field="group")
    else:
        group = None
    try:
        variables.parts(body)
    except variables.VariableError as error:
        raise PromptError(str(error), field="body") from error
    prompt.title, prompt.command, prompt.body, prompt.audience, prompt.group = title, command, body, audience, group
    prompt.updated_at = timezone.now()
    try:
        with transaction.atomic():
            prompt.save()
    except IntegrityError as error:
        raise PromptError(f"{_audience_said(prompt)} already has a prompt /{command}.", field="command") from error
    return prompt


def _audience_said(prompt: Prompt) -> str:
    if prompt.audience == Prompt.Audience.SITE:
        return "The site"
    if prompt.audience == Prompt.Audience.GROUP:
        return f"The group {prompt.group.name}"
    return "Your library"
