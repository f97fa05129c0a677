from datetime import timedelta

from django import forms
from django.utils import timezone

from api.models import AccessToken

EXPIRY_CHOICES = [("", "Never"), ("7", "In 7 days"), ("30", "In 30 days"), ("90", "In 90 days"), ("365", "In a year")]


class TokenForm(forms.Form):
    name = forms.CharField(max_length=AccessToken._meta.get_field("name").max_length, help_text="e.g. “editor”")
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, required=False, label="Expires")
    store_history = forms.BooleanField(
        required=False, label="Save every exchange as a conversation (also possible per request with store: true)"
    )

    def expires_at(self):
        days = self.cleaned_data["expires"]
        return timezone.now() + timedelta(days=int(days)) if days else None
