"""Retention in the admin: the site's periods (one row), group periods, and every run's record."""

from django.conf import settings
from django.contrib import admin

from retention.models import GroupRetention, RetentionPolicy, RetentionRun
from retention.policy import site_periods


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    list_display = ("__str__", "in_force", "last_run")
    readonly_fields = ("in_force", "last_run")

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not RetentionPolicy.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False  # blank fields are the way back to the environment's defaults

    @admin.display(description="in force (days, 0 = forever)")
    def in_force(self, obj=None) -> str:
        periods = site_periods()
        return (
            f"conversations {periods.conversation_days}, trash {periods.trash_days}, "
            f"usage content {periods.usage_content_days} (batches of {settings.RETENTION_BATCH_SIZE})"
        )

    @admin.display(description="last run")
    def last_run(self, obj=None) -> str:
        run = RetentionRun.objects.first()
        if run is None:
            return "never: schedule manage.py apply_retention (README, “Retention and your data”)"
        return f"{run}: {_summary(run)}"


@admin.register(GroupRetention)
class GroupRetentionAdmin(admin.ModelAdmin):
    list_display = ("group", "conversation_days")


@admin.register(RetentionRun)
class RetentionRunAdmin(admin.ModelAdmin):
    list_display = (
        "started_at",
        "finished_at",
        "dry_run",
        "conversations",
        "trash",
        "messages",
        "share_links",
        "usage_unlinked",
        "skipped_generating",
        "failed",
    )
    list_filter = ("dry_run",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(boolean=True, description="error")
    def failed(self, obj: RetentionRun) -> bool:
        return bool(obj.error)


def _summary(run: RetentionRun) -> str:
    if run.error:
        return f"stopped with an error: {run.error}"
    verb = "would remove" if run.dry_run else "removed"
    return (
        f"{verb} {run.conversations} old conversation(s), {run.trash} from the trash, {run.messages} message(s); "
        f"usage rows unlinked: {run.usage_unlinked}"
    )
