"""Admins see everyone's tokens (never the tokens themselves) and revoke them."""

from django.contrib import admin, messages
from django.utils import timezone

from api.models import AccessToken


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at")
    list_filter = ("revoked_at", "store_history")
    search_fields = ("name", "owner__username", "prefix")
    readonly_fields = ("owner", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at")
    fields = (*readonly_fields, "store_history")
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # a token is made by its owner, who alone sees it once

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"{count} token{'s' if count != 1 else ''} revoked.", messages.SUCCESS)
