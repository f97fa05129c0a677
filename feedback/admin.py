"""Feedback in the admin: 👍/👎 per model above the filtered list, and the CSV for staff allowed to export."""

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone

from common.errors import error_response
from conversations.models import Message
from feedback import report, selectors
from feedback.models import Feedback

EXPORT_PERMISSION = "feedback.export_feedback"


class ModelFilter(admin.SimpleListFilter):
    title = "model"
    parameter_name = "model"

    def lookups(self, request, model_admin):
        models = Message.objects.filter(feedback__isnull=False).order_by("model").values_list("model", flat=True)
        return [(model, model or "(unknown)") for model in models.distinct()]

    def queryset(self, request, queryset):
        return queryset if self.value() is None else queryset.filter(message__model=self.value())


class CategoryFilter(admin.SimpleListFilter):
    title = "reason category"
    parameter_name = "category"

    def lookups(self, request, model_admin):
        return Feedback.Category.choices

    def queryset(self, request, queryset):
        return queryset if self.value() is None else queryset.filter(categories__contains=self.value())


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    """What people said about the replies. Read only: the ratings are theirs."""

    change_list_template = "admin/feedback/feedback/change_list.html"
    list_display = ["updated_at", "rating", "model", "user", "categories_shown", "reason"]
    list_filter = ["rating", ModelFilter, CategoryFilter, "updated_at"]
    search_fields = ["reason", "user__username"]
    list_select_related = ["user", "message"]
    readonly_fields = ["message", "user", "rating", "categories", "reason", "created_at", "updated_at"]

    @admin.display(description="model", ordering="message__model")
    def model(self, feedback: Feedback) -> str:
        return feedback.message.model

    @admin.display(description="categories")
    def categories_shown(self, feedback: Feedback) -> str:
        return ", ".join(feedback.category_labels())

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_urls(self):
        export = path("export.csv", self.admin_site.admin_view(self.export_view), name="feedback_feedback_export")
        return [export, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        context = dict(extra_context or {})
        try:
            rows = self.get_changelist_instance(request).get_queryset(request)
        except IncorrectLookupParameters:
            rows = None  # the changelist redirects with ?e=1 itself
        if rows is not None:
            context["counts_per_model"] = selectors.counts_per_model(rows)
        if request.user.has_perm(EXPORT_PERMISSION):
            query = request.GET.urlencode()
            context["export_url"] = reverse("admin:feedback_feedback_export") + (f"?{query}" if query else "")
        return super().changelist_view(request, extra_context=context)

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """The filtered list as CSV, with the messages it is about: for staff with the export permission."""
        if not request.user.has_perm(EXPORT_PERMISSION):
            raise PermissionDenied
        try:
            rows = self.get_changelist_instance(request).get_queryset(request)
        except IncorrectLookupParameters:
            return error_response(request, 400, "These filters cannot be applied: open the list and filter again.")
        response = StreamingHttpResponse(report.csv_lines(rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="chatsite-feedback-{timezone.localdate()}.csv"'
        return response
