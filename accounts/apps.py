"""Who may come in: sign-in and sign-up pages, their throttles, password pages, the first admin."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"
