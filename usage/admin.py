"""The Usage page in the admin: tokens and spend per day, spend per person, group, model and key,
budgets near their limit, top users, error rate per key, CSV; and the groups' budgets."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from providers.models import ProviderKey
from usage import budgets, report, spend
from usage.models import GroupBudget, Usage

User = get_user_model()
SPEND_TABLES = [("user", "person"), ("group", "group"), ("model", "model"), ("key", "key")]


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
        export = path("export.csv", self.admin_site.admin_view(self.export_view), name="usage_usage_export")
        return [export, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        filters = report.Filters.from_query(request.GET)
        rows = report.rows(filters)
        context = {
            **self.admin_site.each_context(request),
            "title": "Usage",
            "opts": self.model._meta,
            "filters": filters,
            "chart": report.chart(report.per_day(rows)),
            "spend_chart": report.chart(report.per_day(rows, "cost"), label=report.amount),
            "spend": [(dimension, title, spend.spend_by(rows, dimension)) for dimension, title in SPEND_TABLES],
            "unpriced": spend.unpriced_models(rows),
            "warnings": budgets.near_or_over(),
            "currency": settings.CHAT_CURRENCY,
            "groups": Group.objects.order_by("name"),
            "top_users": report.top_users(rows),
            "estimated": report.estimated(rows),
            "error_rates": report.error_rates(rows),
            "days": report.DAYS,
            "first_day": report.window_start(),
            "users": User.objects.filter(pk__in=Usage.objects.values("user_id")).order_by("username"),
            "keys": ProviderKey.objects.all(),
            "environment_key": report.ENVIRONMENT_KEY,
            "models": Usage.objects.order_by("model").values_list("model", flat=True).distinct(),
            "sources": Usage.Source.choices,
            "export_url": reverse("admin:usage_usage_export") + _query(filters),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/usage/usage/report.html", context)

    def export_view(self, request: HttpRequest) -> StreamingHttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = report.rows(report.Filters.from_query(request.GET))
        response = StreamingHttpResponse(report.csv_lines(rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="chatsite-usage-{timezone.localdate()}.csv"'
        return response


def _query(filters: report.Filters) -> str:
    query = filters.as_query()
    return "?" + urlencode(query) if query else ""


# --- Group budgets ------------------------------------------------------------------------
@admin.register(GroupBudget)
class GroupBudgetAdmin(admin.ModelAdmin):
    """What each group's members may spend together; a person's own budget is on their user page."""

    list_display = ["group", "monthly_budget", "daily_budget"]
    list_select_related = ["group"]
    ordering = ["group__name"]
