from django.contrib.auth.forms import UserCreationForm


class SignupForm(UserCreationForm):
    """Django's sign-up form, with what is wrong with a password shown under the password itself
    (Django puts it under the confirmation; only "the two passwords differ" belongs there)."""

    def validate_password_for_user(self, user, **kwargs):
        super().validate_password_for_user(user, password_field_name="password1")  # noqa: S106 (a field name)
