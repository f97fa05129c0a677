import uuid

from django import forms
from django.conf import settings

from conversations.models import FOLDER_NAME_LENGTH, TITLE_LENGTH, Conversation
from providers import catalogue
from providers.params import PARAMETER_BOUNDS


class EditForm(forms.Form):
    """The text of a message: a new one, or an edited copy of one already sent."""

    content = forms.CharField(
        label="Message",
        strip=True,
        error_messages={"required": "Type a message first."},
        widget=forms.Textarea(attrs={"rows": 1, "placeholder": "Send a message…", "autocomplete": "off"}),
    )

    def clean_content(self) -> str:
        content = self.cleaned_data["content"]
        limit = settings.CHAT_MAX_MESSAGE_CHARS
        if len(content) > limit:
            raise forms.ValidationError(
                f"This message is too long: {len(content):,} characters, and the limit is {limit:,}. "
                "Nothing was sent; shorten it or split it into parts."
            )
        return content


class MessageForm(EditForm):
    # A fresh id per composed message; a double submit repeats it and is stored once.
    client_id = forms.UUIDField(required=False, widget=forms.HiddenInput)
    # The message this one answers: the last one on the page the person was looking at.
    parent = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("client_id", uuid.uuid4())


class NewChatForm(MessageForm):
    """The first message of a new chat, and whether the chat is temporary (not kept)."""

    temporary = forms.BooleanField(required=False)


class ConversationSettingsForm(forms.ModelForm):
    def __init__(self, *args, user, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.user = user
        # The browser checks the same documented bounds as the model and the upstream client.
        for name, (low, high) in PARAMETER_BOUNDS.items():
            if name in self.fields:
                self.fields[name].widget.attrs.update(min=low, max=high)
        # The enabled models of the catalogue this person may use; a chat keeps its model, shown
        # even once turned off or kept from them. A model the site does not offer (named by an
        # imported file) is never offered here.
        self.current_model = catalogue.offered_model(self.instance.model if self.instance.pk else "", user)
        self.catalogue = catalogue.chat_catalogue()
        choices = [(model.model_id, model.display_name) for model in catalogue.enabled_chat_models(user)]
        if self.current_model and self.current_model not in dict(choices):
            known = self.catalogue.get(self.current_model)
            if known is None:
                label = self.current_model
            else:
                label = f"{known} (turned off)" if not known.enabled else f"{known} (not for your account)"
            choices.insert(0, (self.current_model, label))
        self.fields["model"] = forms.ChoiceField(
            label="Model", choices=choices, required=False, initial=self.current_model
        )

    def clean_model(self) -> str:
        model_id = self.cleaned_data.get("model") or self.current_model
        chat_model = self.catalogue.get(model_id)
        if chat_model is not None and not chat_model.enabled:
            raise forms.ValidationError(f"{chat_model} has been turned off by an admin. Choose another model.")
        if not catalogue.may_use(self.user, model_id):
            raise forms.ValidationError(f"{chat_model} is kept for some groups on this site. Choose another model.")
        return model_id

    def clean(self):
        cleaned = super().clean()
        chat_model = self.catalogue.get(cleaned.get("model") or "")
        # A form without the field (the header's model picker) checks the conversation's own.
        max_tokens = cleaned.get("max_tokens", self.instance.max_tokens)
        if chat_model is not None and max_tokens and max_tokens > chat_model.context_window:
            self.add_error(
                "max_tokens" if "max_tokens" in self.fields else "model",
                f"{chat_model} reads at most {chat_model.context_window:,} tokens, reply included.",
            )
        return cleaned

    class Meta:
        model = Conversation
        fields = ["model", "system_prompt", "temperature", "top_p", "max_tokens"]
        labels = {"system_prompt": "System prompt", "top_p": "Top p", "max_tokens": "Max tokens"}
        help_texts = {
            "system_prompt": "Instructions the model reads before the conversation.",
            "temperature": "0 to 2. Higher is more varied. Blank: the model's default.",
            "top_p": "0.1 to 1. Blank: the model's default.",
            "max_tokens": "1 to 32,000: the longest reply. Blank: the model's default (512).",
        }
        widgets = {
            "system_prompt": forms.Textarea(attrs={"rows": 3, "placeholder": "You are a helpful assistant."}),
            "temperature": forms.NumberInput(attrs={"step": "0.1"}),
            "top_p": forms.NumberInput(attrs={"step": "0.05"}),
            "max_tokens": forms.NumberInput(attrs={"step": "1"}),
        }


class ConversationModelForm(ConversationSettingsForm):
    """The model alone, as the chat header changes it: the same choices and checks as the settings."""

    class Meta(ConversationSettingsForm.Meta):
        fields = ["model"]


class RenameForm(forms.Form):
    title = forms.CharField(max_length=TITLE_LENGTH, required=False, label="Title")


class FolderForm(forms.Form):
    name = forms.CharField(
        max_length=FOLDER_NAME_LENGTH,
        label="Folder name",
        error_messages={"required": "Give the folder a name."},
    )


class MoveForm(forms.Form):
    # A folder's id, or blank: no folder.
    folder = forms.IntegerField(required=False, min_value=1, error_messages={"invalid": "Choose one of your folders."})


class ImportForm(forms.Form):
    file = forms.FileField(
        label="Export file",
        help_text="A chatsite JSON export, or conversations.json from the ZIP file of a ChatGPT data export.",
    )
