from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import ValidationError

from accounts.models import SignInSettings
from accounts.throttles import ThrottledAuthenticationForm


class SignupForm(UserCreationForm):
    """Django's sign-up form, with what is wrong with a password shown under the password itself
    (Django puts it under the confirmation; only "the two passwords differ" belongs there)."""

    def validate_password_for_user(self, user, **kwargs):
        super().validate_password_for_user(user, password_field_name="password1")  # noqa: S106 (a field name)


class SignInForm(ThrottledAuthenticationForm):
    """The throttled sign-in form, which lets only superusers in when password sign-in is turned off."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if not user.is_superuser and not SignInSettings.current().password_sign_in:
            raise ValidationError(
                "Password sign-in is turned off on this site: use the sign-in button of your team's account.",
                code="password_sign_in_off",
            )
