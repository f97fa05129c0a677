"""Rewrite the stored HTML of messages rendered by an older renderer (run after markdown.VERSION is bumped)."""

from django.core.management.base import BaseCommand
from django.db import transaction

from conversations import markdown
from conversations.models import Message, rendered_html

BATCH = 200  # rows per transaction: on SQLite every other writer waits behind it


class Command(BaseCommand):
    help = "Render again, in batches, every message whose stored HTML is out of date."

    def handle(self, *args, **options):
        stale = Message.objects.exclude(html_version=markdown.VERSION).order_by("pk").only("pk", "content")
        rewritten, after = 0, 0
        while batch := list(stale.filter(pk__gt=after)[:BATCH]):
            with transaction.atomic():
                for message in batch:
                    # Only if the text is still the one rendered: a streaming reply moves on.
                    rewritten += Message.objects.filter(pk=message.pk, content=message.content).update(
                        **rendered_html(message.content)
                    )
            after = batch[-1].pk
        self.stdout.write(f"Rendered {rewritten} message(s) again.")
