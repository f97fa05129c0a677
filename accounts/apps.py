"""Who may come in: sign-in and sign-up pages, their throttles, password pages, the first admin, team
sign-in through identity providers (django-allauth) with their groups, two-factor sign-in, off-boarding."""

from django.apps import AppConfig
from django.db.models.signals import post_init, post_save


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"

    def ready(self):
        from django.contrib.auth import get_user_model

        from accounts import offboarding

        # Every deactivation, however it is saved, ends the person's access (accounts.offboarding).
        user_model = get_user_model()
        post_init.connect(offboarding.remembered_active, sender=user_model, dispatch_uid="offboarding-loaded")
        post_save.connect(offboarding.deactivated, sender=user_model, dispatch_uid="offboarding-saved")
