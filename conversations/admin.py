"""Conversations in the admin: read-only, for support."""

from django.contrib import admin

from conversations.models import Conversation, Message, ShareLink


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
