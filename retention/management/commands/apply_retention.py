"""Apply the retention periods: old conversations, the trash, and usage rows' links to content."""

from django.core.management.base import BaseCommand, CommandError

from retention.policy import site_periods
from retention.services import apply_retention, due_conversations

LISTED = 20  # conversations a dry run lists at the default verbosity


class Command(BaseCommand):
    help = (
        "Delete conversations not updated for the retention period (per group where set), the trash "
        "past its period, and unlink old usage rows from their messages (the rows are kept). "
        "Periods: Admin › Retention policy, else RETENTION_* in the environment."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="print what would be removed; change nothing")
        parser.add_argument("--batch-size", type=int, default=None, help="conversations per transaction")

    def handle(self, *args, dry_run: bool, batch_size: int | None, **options):
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        periods = site_periods()
        self.stdout.write(
            "Periods in force (days, 0 = forever): "
            f"conversations {periods.conversation_days} (groups may differ), trash {periods.trash_days}, "
            f"usage content {periods.usage_content_days}."
        )
        try:
            run = apply_retention(dry_run=dry_run, batch_size=batch_size)
        except Exception as error:
            raise CommandError(f"Retention stopped: {error} (what was done before is kept; see the admin).") from error
        verb = "Would remove" if dry_run else "Removed"
        self.stdout.write(
            f"{verb} {run.conversations} old conversation(s) and {run.trash} from the trash "
            f"({run.messages} message(s), {run.share_links} share link(s)); "
            f"{'would unlink' if dry_run else 'unlinked'} {run.usage_unlinked} usage row(s) from their messages."
        )
        if run.skipped_generating:
            self.stdout.write(f"Kept {run.skipped_generating} conversation(s) with a reply still being written.")
        if dry_run:
            self._list_due(periods, run, everything=options["verbosity"] > 1)
            self.stdout.write("Dry run: nothing was changed.")

    def _list_due(self, periods, run, *, everything: bool) -> None:
        old, trash = due_conversations(periods=periods, now=run.started_at, writing=False)
        shown = 0
        for reason, field, conversations in (
            ("not updated since", "updated_at", old),
            ("in the trash since", "deleted_at", trash),
        ):
            for conversation in conversations.select_related("owner").order_by("pk").iterator():
                if shown == LISTED and not everything:
                    self.stdout.write("… and more (--verbosity 2 lists every one).")
                    return
                when = getattr(conversation, field)
                self.stdout.write(f"  conversation {conversation.pk} of {conversation.owner}: {reason} {when:%Y-%m-%d}")
                shown += 1
