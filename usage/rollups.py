"""Running totals per day for each person, each group and the site, beside the usage rows.

`add` runs in the transaction that stores a usage row: one INSERT … ON CONFLICT DO UPDATE SET
x = x + n per call (SQLite and PostgreSQL both), so concurrent calls never lose an increment. The
checks before a call read this month's day rows (at most 31 per owner) instead of the month's
usage rows. `rebuild` recomputes every total from the rows.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import BigIntegerField, Count, F, Q, Sum
from django.db.models.functions import Cast, Round
from django.utils import timezone

from usage.models import NANOS, Rollup, Usage
from usage.money import from_nanos, to_nanos

Owner = tuple[str, int]  # (Rollup.Scope, user or group id; 0 for the site)
SITE: Owner = (Rollup.Scope.SITE, 0)
_Memberships = get_user_model().groups.through


def group_ids_of(user_id: int) -> list[int]:
    return list(_Memberships.objects.filter(user_id=user_id).values_list("group_id", flat=True))


def add(usage: Usage) -> None:
    """Count one usage row in its day's totals: its person's, their groups' and the site's."""
    owners = [SITE]
    if usage.user_id is not None:
        owners += [(Rollup.Scope.USER, usage.user_id)]
        owners += [(Rollup.Scope.GROUP, group_id) for group_id in group_ids_of(usage.user_id)]
    day = connection.ops.adapt_datefield_value(timezone.localdate(usage.created_at))
    table = connection.ops.quote_name(Rollup._meta.db_table)
    values = ", ".join(["(%s, %s, %s, 1, %s, %s)"] * len(owners))
    params = []
    # Always the same order, so two calls on PostgreSQL lock shared rows in the same order.
    for scope, owner_id in sorted(owners):
        params += [scope, owner_id, day, usage.total_tokens, to_nanos(usage.cost)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (scope, owner_id, day, calls, tokens, cost_nanos) VALUES {values} "  # noqa: S608 - our table
            "ON CONFLICT (scope, owner_id, day) DO UPDATE SET "
            f"calls = {table}.calls + excluded.calls, tokens = {table}.tokens + excluded.tokens, "
            f"cost_nanos = {table}.cost_nanos + excluded.cost_nanos",
            params,
        )


@dataclass(frozen=True)
class Totals:
    """One owner's tokens and spend, today and this month."""

    tokens_today: int = 0
    tokens_month: int = 0
    cost_today: Decimal = Decimal(0)
    cost_month: Decimal = Decimal(0)


def totals(owners: list[Owner], *, today: date | None = None) -> dict[Owner, Totals]:
    """Today's and this month's totals of each owner, in one query over at most 31 rows per owner.

    Plain SQL: it runs before every call, and building the same query with the ORM cost several
    times the query itself (bench/README.md)."""
    if not owners:
        return {}
    today = today or timezone.localdate()
    day, first = (connection.ops.adapt_datefield_value(value) for value in (today, today.replace(day=1)))
    match = " OR ".join(["(scope = %s AND owner_id = %s)"] * len(owners))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT scope, owner_id, SUM(CASE WHEN day = %s THEN tokens ELSE 0 END), SUM(tokens), "  # noqa: S608
            "SUM(CASE WHEN day = %s THEN cost_nanos ELSE 0 END), SUM(cost_nanos) "
            f"FROM {connection.ops.quote_name(Rollup._meta.db_table)} "  # our table; the values are parameters
            f"WHERE day >= %s AND day <= %s AND ({match}) GROUP BY scope, owner_id",
            [day, day, first, day, *(value for owner in owners for value in owner)],
        )
        found = cursor.fetchall()
    result = {owner: Totals() for owner in owners}
    for scope, owner_id, *sums in found:
        result[(scope, owner_id)] = _totals(*sums)
    return result


def spend_by_owner(scope: str, *, today: date | None = None) -> dict[int, Totals]:
    """Today's and this month's totals of every owner of a scope with any (the Usage page's warnings)."""
    today = today or timezone.localdate()
    found = (
        Rollup.objects.filter(scope=scope, day__gte=today.replace(day=1), day__lte=today)
        .values_list("owner_id")
        .annotate(**_day_and_month(today))
        .order_by()
    )
    return {owner_id: _totals(*sums) for owner_id, *sums in found}


def _day_and_month(today: date) -> dict:
    return {
        "tokens_today": Sum("tokens", filter=Q(day=today)),
        "tokens_month": Sum("tokens"),
        "cost_today": Sum("cost_nanos", filter=Q(day=today)),
        "cost_month": Sum("cost_nanos"),
    }


def _totals(tokens_today, tokens_month, cost_today, cost_month) -> Totals:
    return Totals(
        tokens_today=tokens_today or 0,
        tokens_month=tokens_month or 0,
        cost_today=from_nanos(cost_today or 0),
        cost_month=from_nanos(cost_month or 0),
    )


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, clock_time.min))


def _sums() -> dict:
    # Each row's cost in whole nano-units, then added: exact on both engines (SQLite keeps decimals as REAL).
    return {
        "calls": Count("id"),
        "tokens": Sum("total_tokens"),
        "nanos": Sum(Cast(Round(F("cost") * NANOS), BigIntegerField())),
    }


def rebuild(*, usage_model=Usage, rollup_model=Rollup) -> int:
    """Recompute every day's totals from the usage rows; returns how many total rows were written.

    Groups are credited with the rows of their members as they are now (a row does not record the
    groups its person was in). Concurrent calls wait: on PostgreSQL the table is locked for the
    rebuild, so a call whose row it did not see adds its increment after it. The models are
    parameters so that the migration which made the table can fill it with its own.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {connection.ops.quote_name(rollup_model._meta.db_table)} IN EXCLUSIVE MODE")
        rollup_model.objects.all().delete()
        times = usage_model.objects.order_by("created_at").values_list("created_at", flat=True)
        if not times.exists():
            return 0
        day = timezone.localdate(times.first())
        last = max(timezone.localdate(), timezone.localdate(times.last()))
        written = 0
        while day <= last:
            rows = usage_model.objects.filter(
                created_at__gte=_day_start(day), created_at__lt=_day_start(day + timedelta(days=1))
            )
            people = rows.exclude(user=None).values_list("user_id").annotate(**_sums()).order_by()
            groups = rows.filter(user__groups__isnull=False).values_list("user__groups").annotate(**_sums()).order_by()
            made = [
                rollup_model(
                    scope=scope, owner_id=owner_id, day=day, calls=calls, tokens=tokens or 0, cost_nanos=nanos or 0
                )
                for scope, found in (
                    (Rollup.Scope.SITE, [(0, *rows.aggregate(**_sums()).values())]),
                    (Rollup.Scope.USER, people),
                    (Rollup.Scope.GROUP, groups),
                )
                for owner_id, calls, tokens, nanos in found
                if calls
            ]
            rollup_model.objects.bulk_create(made, batch_size=1000)
            written += len(made)
            day += timedelta(days=1)
        return written
