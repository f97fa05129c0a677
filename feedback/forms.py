from django import forms

from feedback.models import REASON_LENGTH, Feedback


class FeedbackForm(forms.Form):
    rating = forms.ChoiceField(choices=Feedback.Rating.choices, error_messages={"required": "Choose 👍 or 👎."})
    categories = forms.MultipleChoiceField(
        choices=Feedback.Category.choices, required=False, widget=forms.CheckboxSelectMultiple, label="What was wrong"
    )
    reason = forms.CharField(
        max_length=REASON_LENGTH,
        required=False,
        strip=True,
        label="Reason (optional)",
        widget=forms.TextInput(attrs={"placeholder": "What would have been better?", "autocomplete": "off"}),
    )
