"""The reads behind the admin's Usage page (the rows are written by usage.services.record).

The page's chart is drawn here as plain numbers (bar and label positions in an SVG of fixed size), so
the template only places rectangles, lines and labels: no JavaScript, nothing from another site.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from common import spreadsheet
from usage import budgets, rollups
from usage.models import Rollup, Usage
from usage.quotas import limits_of, period_starts

DAYS = 30
ENVIRONMENT_KEY = "env"  # the `key` filter's value for AIMLAPI_API_KEY


@dataclass(frozen=True)
class Filters:
    """The Usage page's filters, from its query string; blank means all."""

    user: str = ""
    group: str = ""  # an auth Group id: the rows of its members now
    key: str = ""  # a ProviderKey id, or ENVIRONMENT_KEY
    model: str = ""
    source: str = ""  # a Usage.Source value

    @classmethod
    def from_query(cls, query) -> "Filters":
        user, key = query.get("user", "").strip(), query.get("key", "").strip()
        group = query.get("group", "").strip()
        return cls(
            user=user if user.isdigit() else "",
            group=group if group.isdigit() else "",
            key=key if key.isdigit() or key == ENVIRONMENT_KEY else "",
            model=query.get("model", "").strip()[:200],
            source=source if (source := query.get("source", "").strip()) in Usage.Source.values else "",
        )

    def as_query(self) -> dict:
        return {name: value for name, value in vars(self).items() if value}


def window_start(today: date | None = None) -> date:
    return (today or timezone.localdate()) - timedelta(days=DAYS - 1)


def rows(filters: Filters) -> QuerySet:
    """The usage rows of the last DAYS days (today included) that match the filters."""
    first_day, _ = period_starts()
    since = first_day - timedelta(days=DAYS - 1)
    queryset = Usage.objects.filter(created_at__gte=since)
    if filters.user:
        queryset = queryset.filter(user_id=int(filters.user))
    if filters.group:
        queryset = queryset.filter(user__groups=int(filters.group))
    if filters.key == ENVIRONMENT_KEY:
        queryset = queryset.filter(key__isnull=True)
    elif filters.key:
        queryset = queryset.filter(key_id=int(filters.key))
    if filters.model:
        queryset = queryset.filter(model=filters.model)
    if filters.source:
        queryset = queryset.filter(source=filters.source)
    return queryset


def per_day(queryset: QuerySet, field: str = "total_tokens") -> list[tuple[date, int | Decimal]]:
    """(day, the sum of `field`: tokens or cost) for each of the last DAYS days, oldest first,
    days without calls included."""
    totals = dict(
        queryset.annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(total=Sum(field))
        .values_list("day", "total")
    )
    first = window_start()
    return [(first + timedelta(days=n), totals.get(first + timedelta(days=n)) or 0) for n in range(DAYS)]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: date
    value: int | Decimal


@dataclass(frozen=True)
class Tick:
    """A label on an axis: a day under the bars, or a token count beside them (with its grid line)."""

    x: float
    y: float
    label: str


CHART_WIDTH, CHART_HEIGHT, CHART_TOP = 720, 200, 10  # the plot: bars stand on CHART_HEIGHT
CHART_LEFT, CHART_RIGHT, CHART_BOTTOM = 56, 24, 24  # room for the token counts and the days around it


def compact(tokens) -> str:
    """1200 → "1.2k", 3000000 → "3M": short enough for the axis."""
    tokens = round(tokens)
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if tokens >= size:
            return f"{tokens / size:.1f}".removesuffix(".0") + suffix
    return str(tokens)


def amount(value) -> str:
    """0.0312, 12.50: an amount short enough for the axis (the currency is in the heading)."""
    return f"{value:,.2f}" if value >= 1 or value == 0 else f"{value:.4f}"


def chart(series: list[tuple[date, int | Decimal]], label=compact) -> dict:
    """Bars for an SVG plot CHART_WIDTH wide and CHART_HEIGHT high (the tallest day fills the height),
    with axes: every seventh day labelled (ending today) and the values (`label`led) at 0, half and
    the peak."""
    series = [(day, Decimal(value)) for day, value in series]
    peak = max((value for _, value in series), default=0)
    slot = CHART_WIDTH / max(len(series), 1)
    plot = CHART_HEIGHT - CHART_TOP
    bars, days = [], []
    for index, (day, value) in enumerate(series):
        height = round(float(plot * value / peak), 1) if peak else 0
        bars.append(
            Bar(
                x=round(CHART_LEFT + index * slot + 2, 1),
                y=CHART_HEIGHT - height,
                width=round(slot - 4, 1),
                height=height,
                day=day,
                value=value,
            )
        )
        if (len(series) - 1 - index) % 7 == 0:
            days.append(
                Tick(x=round(CHART_LEFT + (index + 0.5) * slot, 1), y=CHART_HEIGHT + 16, label=f"{day.day} {day:%b}")
            )
    levels = (0, peak / 2, peak) if peak else (0,)
    counts = [
        Tick(x=CHART_LEFT - 6, y=round(float(CHART_HEIGHT - plot * level / (peak or 1)), 1), label=label(level))
        for level in levels
    ]
    return {
        "bars": bars,
        "days": days,
        "counts": counts,
        "peak": peak,
        "left": CHART_LEFT,
        "right": CHART_LEFT + CHART_WIDTH,
        "top": CHART_TOP,
        "bottom": CHART_HEIGHT,
        "width": CHART_LEFT + CHART_WIDTH + CHART_RIGHT,
        "height": CHART_HEIGHT + CHART_BOTTOM,
        "total": sum(value for _, value in series),
    }


def estimated(queryset: QuerySet) -> dict:
    """The calls whose token counts are estimates (the upstream sent none), and their tokens."""
    return queryset.filter(tokens_estimated=True).aggregate(calls=Count("id"), tokens=Sum("total_tokens"))


def top_users(queryset: QuerySet, limit: int = 10) -> list[dict]:
    return list(
        queryset.exclude(user=None)
        .values("user_id", "user__username")
        .annotate(tokens=Sum("total_tokens"), calls=Count("id"))
        .order_by("-tokens", "user__username")[:limit]
    )


def error_rates(queryset: QuerySet) -> list[dict]:
    """Calls and failures per key (the environment's key as one row), most calls first."""
    grouped = (
        queryset.values("key_id", "key_label")
        .annotate(calls=Count("id"), errors=Count("id", filter=Q(status=Usage.Status.ERROR)))
        .order_by("-calls")
    )
    result = []
    for row in grouped:
        label = row["key_label"] or ("environment (AIMLAPI_API_KEY)" if row["key_id"] is None else "deleted key")
        rate = 100 * row["errors"] / row["calls"] if row["calls"] else 0
        result.append({**row, "label": label, "rate": rate})
    return result


CSV_HEADER = [
    "time",
    "user",
    "key",
    "model",
    "status",
    "error_code",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "latency_ms",
    "first_token_ms",
    "tokens_estimated",
    "source",
    "input_price",
    "output_price",
    "cost",
    "currency",
]


def csv_lines(queryset: QuerySet) -> Iterator[str]:
    """The rows as CSV text, one line at a time (for a streaming response)."""
    return spreadsheet.csv_lines(CSV_HEADER, _values(queryset))


def _values(queryset: QuerySet) -> Iterator[list]:
    for usage in queryset.select_related("user").order_by("created_at", "id").iterator():
        yield [
            timezone.localtime(usage.created_at).isoformat(timespec="seconds"),
            usage.user.get_username() if usage.user else "",
            usage.key_label or ("environment" if usage.key_id is None else "deleted key"),
            usage.model,
            usage.status,
            usage.error_code,
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens,
            "" if usage.latency_ms is None else usage.latency_ms,
            "" if usage.first_token_ms is None else usage.first_token_ms,
            "yes" if usage.tokens_estimated else "no",
            usage.source,
            "" if usage.input_price is None else usage.input_price,
            "" if usage.output_price is None else usage.output_price,
            usage.cost,
            settings.CHAT_CURRENCY,
        ]


def summary_for(user) -> dict:
    """A person's tokens and spend today and this month against their quota and budgets (for the user
    admin and the person's own Usage page): read from the running totals."""
    quota, limits = limits_of(user)
    owner = (Rollup.Scope.USER, user.pk)
    totals = rollups.totals([owner, *(budget.owner for budget in limits)])
    return {
        "today": totals[owner].tokens_today,
        "month": totals[owner].tokens_month,
        "spent_today": totals[owner].cost_today,
        "spent_month": totals[owner].cost_month,
        "quota": quota,
        "tokens_left_today": max(quota.daily - totals[owner].tokens_today, 0),
        "tokens_left_month": max(quota.monthly - totals[owner].tokens_month, 0),
        "standings": budgets.standings(limits, totals),
    }


def calls_of(user) -> dict:
    """The person's calls and failed calls in all (a count over their rows: for the user admin)."""
    return Usage.objects.filter(user=user).aggregate(calls=Count("id"), errors=Count("id", filter=Q(status="error")))
