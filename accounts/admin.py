"""People in the admin: the stock user admin, with a token quota, a budget and a usage summary."""

from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.urls import reverse
from django.utils.html import format_html

from providers import keys
from usage import report
from usage.models import UserQuota
from usage.money import format_money

User = get_user_model()


# --- People: the stock user admin, with a quota and a usage summary ---------------------
class UserQuotaInline(admin.StackedInline):
    model = UserQuota
    can_delete = False
    max_num = 1
    verbose_name_plural = "Token quota and budget"
    fields = ["daily_tokens", "monthly_tokens", "daily_budget", "monthly_budget"]


admin.site.unregister(User)


@admin.register(User)
class ChatUserAdmin(UserAdmin):
    inlines = [UserQuotaInline]
    list_display = ["username", "email", "is_active", "is_staff", "last_login"]
    readonly_fields = [*UserAdmin.readonly_fields, "usage_summary", "upstream_key"]
    fieldsets = [*UserAdmin.fieldsets, ("Chat", {"fields": ["upstream_key", "usage_summary"]})]

    @admin.display(description="Usage")
    def usage_summary(self, user) -> str:
        if user.pk is None:
            return "—"
        summary = {**report.summary_for(user), **report.calls_of(user)}
        quota = summary["quota"]
        usage_page = reverse("admin:usage_usage_changelist") + "?" + urlencode({"user": user.pk})
        return format_html(
            "{} tokens today (quota {}), {} this month (quota {}); spent {} today, {} this month; "
            '{} calls in all, {} failed. <a href="{}">Usage of the last 30 days</a>',
            f"{summary['today']:,}",
            f"{quota.daily:,}" if quota.daily else "unlimited",
            f"{summary['month']:,}",
            f"{quota.monthly:,}" if quota.monthly else "unlimited",
            format_money(summary["spent_today"]),
            format_money(summary["spent_month"]),
            summary["calls"],
            summary["errors"],
            usage_page,
        )

    @admin.display(description="Upstream key")
    def upstream_key(self, user) -> str:
        if user.pk is None:
            return "—"
        key = keys.stored_key_for(user)
        return f"{key} ({key.masked})" if key else "AIMLAPI_API_KEY from the environment"
