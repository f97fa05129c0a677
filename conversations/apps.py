from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _install_search(sender, using, **kwargs):
    from django.db import connections

    from conversations import search

    search.install(connections[using])


class ConversationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "conversations"

    def ready(self):
        # Puts back search triggers that a table rebuild by a later migration dropped (SQLite).
        post_migrate.connect(_install_search, sender=self)
