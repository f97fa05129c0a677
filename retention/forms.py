from django import forms
from django.contrib.auth.base_user import AbstractBaseUser


class DeleteMyDataForm(forms.Form):
    """The confirmation step: the person types their own username."""

    confirm = forms.CharField(label="Type your username to confirm", max_length=150)

    def __init__(self, *args, user: AbstractBaseUser, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        attrs = {"autocomplete": "off", "spellcheck": "false"}
        if self.is_bound:  # shown again only with an error: the cursor goes back to the box (htmx honours it)
            attrs["autofocus"] = True
        self.fields["confirm"].widget.attrs.update(attrs)

    def clean_confirm(self) -> str:
        typed = self.cleaned_data["confirm"]
        if typed != self.user.get_username():
            raise forms.ValidationError(f"That is not your username ({self.user.get_username()}): nothing was deleted.")
        return typed
