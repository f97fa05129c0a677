"""manage.py rebuild_usage_rollups: recompute the running totals per day from the usage rows."""

import time

from django.core.management.base import BaseCommand

from usage import rollups


class Command(BaseCommand):
    help = (
        "Recompute the day totals per person, group and site that quotas and budgets read, from the "
        "usage rows (after restoring a backup, editing rows by hand, or changing who is in a group)."
    )

    def handle(self, *args, **options) -> None:
        started = time.monotonic()
        written = rollups.rebuild()
        self.stdout.write(f"Rebuilt {written} day totals from the usage rows in {time.monotonic() - started:.1f} s.")
