"""People in the admin: the stock user admin, with a token quota, a budget, a usage summary and
off-boarding in one click; groups from the identity provider and the sign-in settings."""

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html

from accounts import offboarding
from accounts.models import GroupMapping, SignInSettings
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
    actions = ["deactivate_users"]

    # Unticking "Active" in the change form does the same (accounts.offboarding hears every save).
    @admin.action(description="Deactivate (ends sessions now)", permissions=["change"])
    def deactivate_users(self, request, queryset) -> None:
        deactivated = 0
        for user in queryset.filter(is_active=True):
            if user.pk == request.user.pk:
                self.message_user(request, "You cannot deactivate yourself here: ask another admin.", messages.WARNING)
                continue
            if offboarding.user_deactivate(user=user):
                self.log_change(request, user, [{"changed": {"fields": ["Active"]}}])
                deactivated += 1
        if deactivated:
            self.message_user(
                request,
                f"Deactivated {deactivated} {'person' if deactivated == 1 else 'people'}: their sessions ended, "
                "their live replies were stopped, and their share links and API tokens no longer work.",
            )

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


# --- Sign-in: groups from the identity provider, the site's sign-in settings --------------
@admin.register(GroupMapping)
class GroupMappingAdmin(admin.ModelAdmin):
    list_display = ["claim_value", "group"]
    search_fields = ["claim_value", "group__name"]
    autocomplete_fields = ["group"]


@admin.register(SignInSettings)
class SignInSettingsAdmin(admin.ModelAdmin):
    list_display = ["__str__", "password_sign_in", "mfa_required_for_staff"]

    def has_add_permission(self, request) -> bool:
        return super().has_add_permission(request) and not SignInSettings.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        # One row: the list is its form (the add form until the first save).
        if SignInSettings.objects.exists():
            return redirect(reverse("admin:accounts_signinsettings_change", args=[1]))
        return redirect(reverse("admin:accounts_signinsettings_add"))
