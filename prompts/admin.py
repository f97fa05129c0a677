from django.contrib import admin

from prompts.models import Prompt


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ("command", "title", "audience", "group", "owner", "updated_at")
    list_filter = ("audience", "group")
    search_fields = ("command", "title", "body", "owner__username")
    raw_id_fields = ("owner",)
    readonly_fields = ("created_at", "updated_at")
