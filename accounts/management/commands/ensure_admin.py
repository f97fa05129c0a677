"""Create the first admin account when the site has none (run by `make run`)."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create a superuser if none exists. The username comes from DJANGO_SUPERUSER_USERNAME (default "
        "'admin') and the password from DJANGO_SUPERUSER_PASSWORD, or a random one that is printed once."
    )

    def handle(self, *args, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin"
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        if generated:
            self.stdout.write(
                self.style.SUCCESS(
                    f"\nCreated the first admin account.\n  username: {username}\n  password: {password}\n"
                    "This password is shown only once: sign in and change it at /admin/password_change/.\n"
                )
            )
        else:
            self.stdout.write(self.style.SUCCESS(f"Created the first admin account '{username}'."))
