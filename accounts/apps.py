"""Who may come in: sign-in and sign-up pages, their throttles, password pages, the first admin, team
sign-in through identity providers (django-allauth) with their groups, and two-factor sign-in."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"
