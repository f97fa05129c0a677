"""Delete for good the conversations people deleted (the trash behind the Undo button), and the temporary
chats people left or that expired (TEMPORARY_CHAT_HOURS). Run it from cron, e.g. hourly."""

from datetime import timedelta

from django.core.management.base import BaseCommand

from conversations.services import conversation_purge_trash, temporary_chats_purge


class Command(BaseCommand):
    help = "Delete for good the conversations in the trash for longer than --older-than-minutes (default 60)."

    def add_arguments(self, parser):
        parser.add_argument("--older-than-minutes", type=float, default=60.0)

    def handle(self, *args, **options):
        purged = conversation_purge_trash(older_than=timedelta(minutes=options["older_than_minutes"]))
        self.stdout.write(f"Purged {purged} conversation(s) from the trash.")
        temporary = temporary_chats_purge()
        self.stdout.write(f"Deleted {temporary} temporary chat(s).")
