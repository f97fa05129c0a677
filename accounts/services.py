"""Writes of the accounts domain."""

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction

from usage.models import UserQuota


def user_signup(*, form) -> AbstractBaseUser:
    """Create an account from a valid UserCreationForm; it starts with the site's default quota."""
    with transaction.atomic():
        user = form.save()
        UserQuota.objects.create(user=user)  # blank fields: the site default
    return user
