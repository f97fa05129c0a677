import re

from django import forms
from django.contrib.auth.models import AbstractBaseUser

from conversations.models import Conversation
from prompts import access, variables
from prompts.models import BODY_LENGTH, COMMAND_LENGTH, TITLE_LENGTH, Prompt

RECENT_CHATS = 50
COMMAND = re.compile(rf"[a-z0-9][a-z0-9_-]{{0,{COMMAND_LENGTH - 1}}}")


class PromptForm(forms.Form):
    """A prompt's fields as typed; who may share it how is the service's to decide."""

    title = forms.CharField(max_length=TITLE_LENGTH)
    command = forms.CharField(
        max_length=COMMAND_LENGTH + 1,
        help_text="Type / and this in the composer: a–z, 0–9, - and _, like “translate”.",
    )
    body = forms.CharField(
        label="Text",
        max_length=BODY_LENGTH,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Write {{name}} where a value goes in; you fill it in before sending. \\{{ writes two braces.",
    )
    audience = forms.ChoiceField(label="Shared with", choices=Prompt.Audience.choices)
    group = forms.ModelChoiceField(queryset=None, required=False, empty_label="(no group)")

    def __init__(self, *args, user: AbstractBaseUser, prompt: Prompt | None = None, **kwargs):
        if prompt is not None and "data" not in kwargs and not args:
            kwargs["initial"] = {
                "title": prompt.title,
                "command": prompt.command,
                "body": prompt.body,
                "audience": prompt.audience,
                "group": prompt.group,
            }
        super().__init__(*args, **kwargs)
        self.fields["group"].queryset = access.shareable_groups(user, keeping=prompt.group if prompt else None)
        keeps_site = prompt is not None and prompt.audience == Prompt.Audience.SITE
        if not access.may_share_site_wide(user) and not keeps_site:
            self.fields["audience"].choices = [c for c in Prompt.Audience.choices if c[0] != Prompt.Audience.SITE]
        if not self.fields["group"].queryset.exists():
            self.fields["audience"].choices = [c for c in self.fields["audience"].choices if c[0] != "group"]
            self.fields["group"].widget = forms.HiddenInput()

    def clean_command(self) -> str:
        command = self.cleaned_data["command"].strip().removeprefix("/").lower()
        if not COMMAND.fullmatch(command):
            raise forms.ValidationError(
                f"A command is 1 to {COMMAND_LENGTH} of a–z, 0–9, - and _, starting with a letter or digit."
            )
        return command

    def clean_body(self) -> str:
        # Its {{variables}} are checked by the service, for this form and any other caller alike.
        body = self.cleaned_data["body"]
        if not body.strip():
            raise forms.ValidationError("Write the prompt's text.")
        return body


class SystemPromptForm(forms.Form):
    """Which of the person's conversations gets the prompt, and a value for each variable."""

    conversation = forms.ModelChoiceField(queryset=None, empty_label=None)

    def __init__(self, *args, user: AbstractBaseUser, prompt: Prompt, **kwargs):
        super().__init__(*args, **kwargs)
        chats = Conversation.objects.filter(owner=user, deleted_at__isnull=True, import_batch__isnull=True)
        field = self.fields["conversation"]
        field.queryset = chats  # any of them is accepted; the list offers the recent ones
        recent = list(chats.order_by("-updated_at", "-id")[:RECENT_CHATS])
        chosen = self.initial.get("conversation")
        if chosen is not None and chosen not in recent:
            recent.insert(0, chosen)
        field.widget.choices = [(chat.pk, chat.display_title) for chat in recent]
        for name in variables.names(prompt.body):
            self.fields[f"var_{name}"] = forms.CharField(label=name, strip=False, max_length=BODY_LENGTH)

    def values(self) -> dict[str, str]:
        return {name.removeprefix("var_"): value for name, value in self.cleaned_data.items() if name != "conversation"}
