"""The Usage page's money: spend per person, group, model and key, and the models without a price
(the rows' own costs: prices were copied onto them at call time)."""

from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum

from providers.models import ChatModel

# How each breakdown groups the rows, and the label of a row of it.
_DIMENSIONS = {
    "user": ("user__username", lambda value: value or "deleted person"),
    "group": ("user__groups__name", lambda value: value or "in no group"),
    "model": ("model", lambda value: value),
    "key": ("key_label", lambda value: value or "environment (AIMLAPI_API_KEY) or deleted key"),
}


def spend_by(queryset: QuerySet, dimension: str, *, limit: int = 10) -> list[dict]:
    """The rows' cost, calls and tokens per person, group, model or key, the most spent first.

    A person in two groups counts in both: the group rows may add up to more than the total."""
    field, label = _DIMENSIONS[dimension]
    grouped = (
        queryset.values(field)
        .annotate(cost=Sum("cost"), calls=Count("id"), tokens=Sum("total_tokens"))
        .order_by("-cost", "-tokens", field)[:limit]
    )
    return [{**row, "label": label(row[field]), "cost": Decimal(row["cost"] or 0)} for row in grouped]


def unpriced_models(queryset: QuerySet) -> list[str]:
    """Models of these rows with no price in the catalogue (their calls cost 0), and catalogue
    models without one."""
    priced = ChatModel.objects.filter(input_price__isnull=False, output_price__isnull=False).values("model_id")
    called = queryset.exclude(model__in=priced).values_list("model", flat=True).distinct()
    listed = ChatModel.objects.filter(Q(input_price=None) | Q(output_price=None)).values_list("model_id", flat=True)
    return sorted({*called, *listed})
