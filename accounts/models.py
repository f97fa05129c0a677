"""What the accounts domain stores: which Django group each group claim of the identity provider fills."""

from django.contrib.auth.models import Group
from django.db import models


class GroupMapping(models.Model):
    """A value of the provider's groups claim and the Django group its members are put in.

    A group that any mapping points to is the provider's: sign-in through the provider adds and
    removes people in it. Groups no mapping points to are the admin's and are never touched.
    """

    claim_value = models.CharField(max_length=150, unique=True, help_text="As the identity provider sends it.")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="provider_claims")

    class Meta:
        ordering = ["claim_value"]
        verbose_name = "group from the identity provider"
        verbose_name_plural = "groups from the identity provider"

    def __str__(self) -> str:
        return f"{self.claim_value} → {self.group.name}"


class SignInSettings(models.Model):
    """How people may sign in, set by an administrator (one row; `current()` reads it)."""

    password_sign_in = models.BooleanField(
        default=True,
        help_text="Off: only superusers sign in with a password; everyone else signs in through the identity provider.",
    )
    mfa_required_for_staff = models.BooleanField(
        "two-factor sign-in required for staff",
        default=False,
        help_text="Staff who sign in with a password must set up an authenticator app before anything else.",
    )

    class Meta:
        verbose_name = verbose_name_plural = "sign-in settings"

    def __str__(self) -> str:
        return "Sign-in settings"

    def save(self, *args, **kwargs):
        self.pk = 1  # one row
        super().save(*args, **kwargs)

    @classmethod
    def current(cls) -> "SignInSettings":
        """The site's settings; the defaults until an administrator saves them."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)
