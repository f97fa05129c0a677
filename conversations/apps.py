from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_migrate


def _install_search(sender, using, **kwargs):
    from django.db import connections

    from conversations import search

    search.install(connections[using])


def _leave_temporary_chats(sender, request, user, **kwargs):
    # Signing out leaves every temporary chat (accounts/ signs out and does not know the chat).
    from conversations import services

    if user is not None:
        services.temporary_chats_leave(owner=user)


class ConversationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "conversations"

    def ready(self):
        # Puts back search triggers that a table rebuild by a later migration dropped (SQLite).
        post_migrate.connect(_install_search, sender=self)
        user_logged_out.connect(_leave_temporary_chats, dispatch_uid="conversations.leave_temporary_chats")
