"""The admin of upstream API keys (never shown again, with Test key) and of the model catalogue."""

import logging

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from providers import keys, upstream, wording
from providers.models import DEFAULT_BASE_URL, HTTP_URL, ChatModel, ProviderKey

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
                config = keys.for_key(key).config()
                models = upstream.list_models(config=config)
            except keys.EncryptionError as error:
                self.message_user(request, f"“{key}” failed: {error}", messages.ERROR)
            except upstream.UpstreamError as error:
                self.message_user(request, f"“{key}” failed: {wording.explain_key_test(error, config)}", messages.ERROR)
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
    list_display = [
        "display_name",
        "model_id",
        "context_window",
        "input_price",
        "output_price",
        "enabled",
        "who_may_use",
    ]
    list_editable = ["enabled"]
    list_filter = ["enabled", "groups_only"]
    search_fields = ["model_id", "display_name"]
    filter_horizontal = ["groups"]
    fieldsets = [
        (None, {"fields": ["model_id", "display_name", "context_window", "default_params", "enabled"]}),
        (
            "Price",
            {
                "fields": ["input_price", "output_price"],
                "description": "Per million tokens, in the site currency (CHAT_CURRENCY). Copied onto each usage row "
                "when the call is made, so a change applies to calls from now on.",
            },
        ),
        (
            "Who may use it",
            {
                "fields": ["groups_only", "groups"],
                "description": "Everyone, unless “only for some groups” is on: then the members of the chosen "
                "groups, and superusers. Others do not see it in the chat or at /v1/models, and a message to it "
                "is refused before anything is sent.",
            },
        ),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="Who may use it")
    def who_may_use(self, chat_model: ChatModel) -> str:
        if not chat_model.groups_only:
            return "everyone"
        names = sorted(group.name for group in chat_model.groups.all())
        return ", ".join(names) if names else "superusers only"
