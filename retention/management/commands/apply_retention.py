"""Apply the retention periods: old conversations, the trash, and usage rows' links to content."""

from django.core.management.base import BaseCommand, CommandError

from retention.policy import site_periods
from retention.services import apply_retention


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
            self.stdout.write("Dry run: nothing was changed.")
