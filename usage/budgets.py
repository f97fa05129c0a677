"""Money budgets: a person's own (or the site's default per person), their groups', the site's.

Each is per calendar month and optionally per day (TIME_ZONE), in CHAT_CURRENCY; 0 is no limit.
They are checked before each call beside the token quotas (usage.quotas) against the running
totals (usage.rollups): a call is refused once what was spent has reached the budget.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from usage import rollups
from usage.models import GroupBudget, Rollup, UserQuota
from usage.money import ZERO, format_money

WARN_AT = Decimal("0.8")  # the Usage page warns from this share of a budget on


class BudgetSpent(Exception):
    """A budget of the person's is spent; `str(error)` says which and when it starts again."""


@dataclass(frozen=True)
class Budget:
    """The money one owner (the person, one of their groups, the site) may spend; 0: no limit."""

    owner: rollups.Owner
    name: str  # "", a group's name, or "" for the site: see _refusal
    daily: Decimal
    monthly: Decimal


def _own_limit(own, field: str, default: Decimal) -> Decimal:
    value = getattr(own, field) if own is not None else None
    return default if value is None else value


def person_budget(user, *, own: "Own | UserQuota | None") -> Budget:
    """The person's own budget where set in the admin, else the site's default per person."""
    return Budget(
        owner=(Rollup.Scope.USER, user.pk),
        name=user.get_username(),
        daily=_own_limit(own, "daily_budget", settings.CHAT_DAILY_BUDGET),
        monthly=_own_limit(own, "monthly_budget", settings.CHAT_MONTHLY_BUDGET),
    )


def site_budget() -> Budget:
    return Budget(
        owner=rollups.SITE, name="", daily=settings.CHAT_SITE_DAILY_BUDGET, monthly=settings.CHAT_SITE_MONTHLY_BUDGET
    )


@dataclass(frozen=True)
class Own:
    """A person's own quota row, as the checks read it (blank fields: the site's defaults)."""

    daily_tokens: int | None
    monthly_tokens: int | None
    daily_budget: Decimal | None
    monthly_budget: Decimal | None


_PLACES = Decimal("0.0001")  # of the budget fields


def _amount(value) -> Decimal | None:
    # SQLite hands a decimal column back as an int or a float: four places are what was stored.
    return value if value is None or isinstance(value, Decimal) else Decimal(str(value)).quantize(_PLACES)


def limits_for(user) -> tuple[Own | None, list[Budget]]:
    """The person's own quota row and the budgets of their groups, in one plain SQL query: it runs
    before every call, where building two ORM queries cost more than running them."""
    memberships = get_user_model().groups.through
    tables = [
        connection.ops.quote_name(model._meta.db_table)
        for model in (UserQuota, GroupBudget, memberships, memberships.group.field.related_model)
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 0, '', daily_tokens, monthly_tokens, daily_budget, monthly_budget "  # noqa: S608 - tables
            f"FROM {tables[0]} WHERE user_id = %s UNION ALL "
            "SELECT b.group_id, g.name, NULL, NULL, b.daily_budget, b.monthly_budget "
            f"FROM {tables[1]} b JOIN {tables[2]} m ON m.group_id = b.group_id JOIN {tables[3]} g ON g.id = b.group_id "
            "WHERE m.user_id = %s",
            [user.pk, user.pk],
        )
        found = cursor.fetchall()
    own, groups = None, []
    for group_id, name, daily_tokens, monthly_tokens, daily, monthly in found:
        if not group_id:
            own = Own(daily_tokens, monthly_tokens, _amount(daily), _amount(monthly))
        else:
            groups.append(
                Budget(owner=(Rollup.Scope.GROUP, group_id), name=name, daily=_amount(daily), monthly=_amount(monthly))
            )
    return own, sorted(groups, key=lambda budget: budget.name)


def budgets_for(user, *, own: Own | UserQuota | None, groups: list[Budget]) -> list[Budget]:
    """Every budget a call of this person counts against, with a limit: theirs, their groups', the site's."""
    every = [person_budget(user, own=own), *groups, site_budget()]
    return [budget for budget in every if budget.daily or budget.monthly]


def _refusal(budget: Budget, limit: Decimal, period: str) -> str:
    whose = {
        Rollup.Scope.USER: "You have spent your",
        Rollup.Scope.GROUP: f"Your group “{budget.name}” has spent its",
        Rollup.Scope.SITE: "This site has spent its",
    }[budget.owner[0]]
    again = "tomorrow" if period == "today" else "next month"
    return (
        f"{whose} budget of {format_money(limit)} for {period}, so this message was not sent. "
        f"It starts again {again}; an admin can raise it."
    )


def check(budgets: list[Budget], totals: dict[rollups.Owner, rollups.Totals]) -> None:
    """Raise BudgetSpent for the first budget whose day or month is spent."""
    for budget in budgets:
        spent = totals.get(budget.owner, rollups.Totals())
        if budget.daily and spent.cost_today >= budget.daily:
            raise BudgetSpent(_refusal(budget, budget.daily, "today"))
        if budget.monthly and spent.cost_month >= budget.monthly:
            raise BudgetSpent(_refusal(budget, budget.monthly, "this month"))


@dataclass(frozen=True)
class Standing:
    """One budget beside what was spent against it, as a person or an admin reads it."""

    budget: Budget
    period: str  # "today" or "this month"
    limit: Decimal
    spent: Decimal

    @property
    def left(self) -> Decimal:
        return max(self.limit - self.spent, ZERO)

    @property
    def percent(self) -> int:
        return int(100 * self.spent / self.limit) if self.limit else 0

    @property
    def who(self) -> str:
        scope, _ = self.budget.owner
        if scope == Rollup.Scope.GROUP:
            return f"the group “{self.budget.name}”"
        return "the site" if scope == Rollup.Scope.SITE else self.budget.name


def standings(budgets: list[Budget], totals: dict[rollups.Owner, rollups.Totals]) -> list[Standing]:
    result = []
    for budget in budgets:
        spent = totals.get(budget.owner, rollups.Totals())
        if budget.monthly:
            result.append(Standing(budget, "this month", budget.monthly, spent.cost_month))
        if budget.daily:
            result.append(Standing(budget, "today", budget.daily, spent.cost_today))
    return result


def near_or_over() -> list[Standing]:
    """Every budget at WARN_AT of its limit or past it: the site's, each group's, each person's."""
    budgets = [site_budget()]
    budgets += [
        Budget(
            owner=(Rollup.Scope.GROUP, row.group_id),
            name=row.group.name,
            daily=row.daily_budget,
            monthly=row.monthly_budget,
        )
        for row in GroupBudget.objects.select_related("group").order_by("group__name")
    ]
    people = rollups.spend_by_owner(Rollup.Scope.USER)
    users = get_user_model().objects.filter(pk__in=list(people)).select_related("chat_quota").order_by("username")
    budgets += [person_budget(user, own=getattr(user, "chat_quota", None)) for user in users]
    totals = {rollups.SITE: rollups.spend_by_owner(Rollup.Scope.SITE).get(0, rollups.Totals())}
    totals |= {
        (Rollup.Scope.GROUP, owner): spent for owner, spent in rollups.spend_by_owner(Rollup.Scope.GROUP).items()
    }
    totals |= {(Rollup.Scope.USER, owner): spent for owner, spent in people.items()}
    return [row for row in standings(budgets, totals) if row.spent >= row.limit * WARN_AT]
