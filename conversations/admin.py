"""The admin: people and their quotas, upstream keys (never shown again), the model catalogue,
usage, and read-only conversations for support."""

import logging
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.debug import sensitive_post_parameters

from conversations import keys, llm, usage
from conversations.models import (
    DEFAULT_BASE_URL,
    HTTP_URL,
    ChatModel,
    Conversation,
    Message,
    ProviderKey,
    ShareLink,
    Usage,
    UserQuota,
)

User = get_user_model()
audit = logging.getLogger("chatsite.audit")


# --- Upstream API keys ------------------------------------------------------------------
class ProviderKeyForm(forms.ModelForm):
    base_url = forms.URLField(
        label="Base URL",
        max_length=300,
        initial=DEFAULT_BASE_URL,
        assume_scheme="https",
        validators=[HTTP_URL],
        help_text="Ends in /v1. chatsite's server calls this address: see docs/security.md.",
    )
    # Write-only: the field is always rendered empty, and the stored key is never sent back.
    secret = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted and never shown again. On a saved key, leave blank to keep the current one.",
    )

    class Meta:
        model = ProviderKey
        fields = ["label", "base_url", "secret", "enabled", "is_default", "users", "groups"]

    def clean_secret(self) -> str:
        secret = self.cleaned_data["secret"]
        if not secret and not self.instance.pk:
            raise forms.ValidationError("Enter the API key.")
        if secret and not keys.is_configured():
            raise forms.ValidationError(
                "FIELD_ENCRYPTION_KEY is not set, so this key cannot be stored encrypted. Put a Fernet key in "
                "the environment or in .env (`make run` writes one to a new .env) and restart chatsite."
            )
        if any(character.isspace() for character in secret):
            raise forms.ValidationError("An API key has no spaces in it: check what was pasted.")
        return secret


@admin.register(ProviderKey)
class ProviderKeyAdmin(admin.ModelAdmin):
    form = ProviderKeyForm
    list_display = ["label", "masked_key", "base_url", "enabled", "is_default", "assigned_to", "updated_at"]
    list_filter = ["enabled", "is_default"]
    search_fields = ["label", "last4"]
    filter_horizontal = ["users", "groups"]
    readonly_fields = ["masked_key", "created_at", "updated_at"]
    actions = ["test_keys", "enable_keys", "disable_keys"]
    fieldsets = [
        (None, {"fields": ["label", "base_url", "masked_key", "secret", "enabled"]}),
        (
            "Who uses it",
            {
                "fields": ["is_default", "users", "groups"],
                "description": "A person uses their own key first, then a key of one of their groups, then the "
                "site default, then AIMLAPI_API_KEY from the environment. Disabled keys are never used.",
            },
        ),
        (None, {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description="API key")
    def masked_key(self, key: ProviderKey) -> str:
        return key.masked if key.last4 else "—"

    @admin.display(description="Used by")
    def assigned_to(self, key: ProviderKey) -> str:
        parts = ["everyone (site default)"] if key.is_default else []
        users, groups = key.users.count(), key.groups.count()
        if users:
            parts.append(f"{users} user{'s' if users != 1 else ''}")
        if groups:
            parts.append(f"{groups} group{'s' if groups != 1 else ''}")
        return ", ".join(parts) or "nobody"

    @method_decorator(sensitive_post_parameters("secret"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Django's error reports leave the typed key out of the request they describe.
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        secret = form.cleaned_data.get("secret")
        if secret:
            keys.set_secret(obj, secret)
        super().save_model(request, obj, form, change)

    @admin.action(description="Test key (asks the upstream for its models)")
    def test_keys(self, request: HttpRequest, queryset) -> None:
        for key in queryset:
            try:
                models = llm.list_models(config=keys.for_key(key).config())
            except (llm.UpstreamError, keys.EncryptionError) as error:
                self.message_user(request, f"“{key}” failed: {error}", messages.ERROR)
            else:
                count = len(models)
                self.message_user(
                    request, f"“{key}” works: {key.base_url} answered with {count} model{'s' * (count != 1)}."
                )

    @admin.action(description="Enable selected keys")
    def enable_keys(self, request: HttpRequest, queryset) -> None:
        self._switch(request, queryset, enabled=True)

    @admin.action(description="Disable selected keys")
    def disable_keys(self, request: HttpRequest, queryset) -> None:
        self._switch(request, queryset, enabled=False)

    def _switch(self, request: HttpRequest, queryset, *, enabled: bool) -> None:
        for key in queryset.exclude(enabled=enabled):
            key.enabled = enabled
            key.save(update_fields=["enabled", "updated_at"])
            self.log_change(request, key, [{"changed": {"fields": ["Enabled"]}}])

    # Every change to a key is audited: the admin's history (LogEntry) and a line on the
    # `chatsite.audit` logger, both naming who changed which fields, never the key itself.
    def log_addition(self, request, obj, message):
        audit.info("%s added the upstream API key %r (#%s)", request.user, str(obj), obj.pk)
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        fields = sorted({field for part in message or [] for field in part.get("changed", {}).get("fields", [])})
        audit.info("%s changed the upstream API key %r (#%s): %s", request.user, str(obj), obj.pk, fields or "-")
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for key in queryset:
            audit.info("%s deleted the upstream API key %r (#%s)", request.user, str(key), key.pk)
        return super().log_deletions(request, queryset)


# --- The model catalogue ----------------------------------------------------------------
@admin.register(ChatModel)
class ChatModelAdmin(admin.ModelAdmin):
    list_display = ["display_name", "model_id", "context_window", "enabled"]
    list_editable = ["enabled"]
    list_filter = ["enabled"]
    search_fields = ["model_id", "display_name"]


# --- People: the stock user admin, with a quota and a usage summary ---------------------
class UserQuotaInline(admin.StackedInline):
    model = UserQuota
    can_delete = False
    max_num = 1
    verbose_name_plural = "Token quota"
    fields = ["daily_tokens", "monthly_tokens"]


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
        summary = usage.summary_for(user)
        quota = summary["quota"]
        report = reverse("admin:conversations_usage_changelist") + "?" + urlencode({"user": user.pk})
        return format_html(
            "{} tokens today (quota {}), {} this month (quota {}); {} calls in all, {} failed. "
            '<a href="{}">Usage of the last 30 days</a>',
            f"{summary['today']:,}",
            f"{quota.daily:,}" if quota.daily else "unlimited",
            f"{summary['month']:,}",
            f"{quota.monthly:,}" if quota.monthly else "unlimited",
            summary["calls"],
            summary["errors"],
            report,
        )

    @admin.display(description="Upstream key")
    def upstream_key(self, user) -> str:
        if user.pk is None:
            return "—"
        key = keys.stored_key_for(user)
        return f"{key} ({key.masked})" if key else "AIMLAPI_API_KEY from the environment"


# --- Usage: a report page instead of a list --------------------------------------------
@admin.register(Usage)
class UsageAdmin(admin.ModelAdmin):
    """The changelist is the "Usage" page: tokens per day, top users, error rate per key, CSV."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        export = path("export.csv", self.admin_site.admin_view(self.export_view), name="conversations_usage_export")
        return [export, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        filters = usage.Filters.from_query(request.GET)
        rows = usage.rows(filters)
        context = {
            **self.admin_site.each_context(request),
            "title": "Usage",
            "opts": self.model._meta,
            "filters": filters,
            "chart": usage.chart(usage.tokens_per_day(rows)),
            "top_users": usage.top_users(rows),
            "estimated": usage.estimated(rows),
            "error_rates": usage.error_rates(rows),
            "days": usage.DAYS,
            "first_day": usage.window_start(),
            "users": User.objects.filter(pk__in=Usage.objects.values("user_id")).order_by("username"),
            "keys": ProviderKey.objects.all(),
            "environment_key": usage.ENVIRONMENT_KEY,
            "models": Usage.objects.order_by("model").values_list("model", flat=True).distinct(),
            "export_url": reverse("admin:conversations_usage_export") + _query(filters),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/conversations/usage/report.html", context)

    def export_view(self, request: HttpRequest) -> StreamingHttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = usage.rows(usage.Filters.from_query(request.GET))
        response = StreamingHttpResponse(usage.csv_lines(rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="chatsite-usage-{timezone.localdate()}.csv"'
        return response


def _query(filters: usage.Filters) -> str:
    query = filters.as_query()
    return "?" + urlencode(query) if query else ""


# --- Conversations: read-only, for support ---------------------------------------------
class _ReadOnly:
    """Staff with the view permission may look; nobody changes a person's messages here.
    Superusers may delete (a person asking for their data to be removed)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


class MessageInline(_ReadOnly, admin.TabularInline):
    model = Message
    extra = 0
    fields = [
        "role",
        "status",
        "parent",
        "content",
        "finish_reason",
        "total_tokens",
        "latency_ms",
        "first_token_ms",
        "error",
        "created_at",
    ]
    readonly_fields = fields
    show_change_link = True

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(_ReadOnly, admin.ModelAdmin):
    view_on_site = False  # the chat page is its owner's only
    list_display = ["__str__", "owner", "model", "updated_at", "created_at", "pinned_at", "archived_at", "deleted_at"]
    list_filter = ["model", ("deleted_at", admin.EmptyFieldListFilter), ("archived_at", admin.EmptyFieldListFilter)]
    search_fields = ["title", "owner__username"]
    list_select_related = ["owner"]
    readonly_fields = ["imported_model"]
    inlines = [MessageInline]

    def get_queryset(self, request):
        # Not the rows an import is still staging: they are not a person's conversations yet.
        return super().get_queryset(request).filter(import_batch__isnull=True)


@admin.register(Message)
class MessageAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = [
        "id",
        "conversation",
        "role",
        "status",
        "finish_reason",
        "total_tokens",
        "latency_ms",
        "first_token_ms",
        "created_at",
    ]
    list_filter = ["role", "status", "finish_reason"]
    search_fields = ["content", "upstream_id", "conversation__owner__username"]
    list_select_related = ["conversation"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(conversation__import_batch__isnull=True)


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    list_display = ["conversation", "created_at", "revoked_at"]
    list_select_related = ["conversation"]
    raw_id_fields = ["conversation"]
    readonly_fields = ["token", "created_at"]
