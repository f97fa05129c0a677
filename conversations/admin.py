from django.contrib import admin

from conversations.models import Conversation, Message, ShareLink


class MessageInline(admin.TabularInline):
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
        "error",
        "created_at",
    ]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["__str__", "owner", "model", "updated_at", "created_at", "pinned_at", "archived_at", "deleted_at"]
    list_filter = ["model", ("deleted_at", admin.EmptyFieldListFilter), ("archived_at", admin.EmptyFieldListFilter)]
    search_fields = ["title", "owner__username"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]
    readonly_fields = ["created_at"]
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "conversation", "role", "status", "finish_reason", "total_tokens", "latency_ms", "created_at"]
    list_filter = ["role", "status", "finish_reason"]
    search_fields = ["content", "upstream_id"]
    list_select_related = ["conversation"]
    raw_id_fields = ["conversation", "parent"]
    readonly_fields = ["client_id", "first_token_ms", "stop_requested", "created_at", "updated_at"]


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    list_display = ["conversation", "created_at", "revoked_at"]
    list_select_related = ["conversation"]
    raw_id_fields = ["conversation"]
    readonly_fields = ["token", "created_at"]
