from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_migrate

from common.signals import access_ended


def _install_search(sender, using, **kwargs):
    from django.db import connections

    from conversations import search

    search.install(connections[using])


def _stop_replies(sender, user, **kwargs):
    from conversations.services import replies_stop

    replies_stop(owner=user)


def _leave_temporary_chats(sender, request, user, **kwargs):
    # Signing out leaves every temporary chat (accounts/ signs out and does not know the chat). A
    # person whose account was just deleted ("Delete all my data") has no chats left to leave.
    from conversations import services

    if user is not None and user.pk is not None:
        services.temporary_chats_leave(owner=user)


class ConversationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "conversations"

    def ready(self):
        # Puts back search triggers that a table rebuild by a later migration dropped (SQLite).
        post_migrate.connect(_install_search, sender=self)
        # A person whose access ended (accounts.offboarding) has their live replies stopped and kept.
        access_ended.connect(_stop_replies, dispatch_uid="conversations-stop-replies")
        # Signing out leaves every temporary chat.
        user_logged_out.connect(_leave_temporary_chats, dispatch_uid="conversations.leave_temporary_chats")
