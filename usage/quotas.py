"""Limits checked before a message is sent upstream: a per-person rate limit, token quotas and
money budgets.

The rate limit counts in Django's cache, in a per-person key per clock minute (a counter of
common.counters, atomic in Redis), so with REDIS_URL every gunicorn process and host shares one
count; the default local-memory cache counts per process. Quotas and budgets (usage.budgets)
read the running totals of today and this calendar month (in TIME_ZONE) that usage.rollups keeps
beside the rows: a handful of rows, however many calls the month has had.
"""

import time
from dataclasses import dataclass
from datetime import datetime
from datetime import time as clock_time

from django.conf import settings
from django.utils import timezone

from common import counters
from usage import budgets, rollups
from usage.models import Rollup, UserQuota

RATE_WINDOW_SECONDS = 60
_clock = time.time  # the tests hold it still, so that a minute does not turn during a test


class LimitReached(Exception):
    """The person may not send now; `str(error)` says why and when they can again."""


@dataclass(frozen=True)
class Quota:
    """A person's effective quota in tokens; 0 means unlimited."""

    daily: int
    monthly: int


def quota_for(user) -> Quota:
    """The person's own quota where set, else the site default (CHAT_*_TOKEN_QUOTA)."""
    return quota_from(UserQuota.objects.filter(user=user).first())


def quota_from(own: "UserQuota | budgets.Own | None") -> Quota:
    """The quota of a person whose own quota row (if any) is `own`."""
    daily = own.daily_tokens if own and own.daily_tokens is not None else settings.CHAT_DAILY_TOKEN_QUOTA
    monthly = own.monthly_tokens if own and own.monthly_tokens is not None else settings.CHAT_MONTHLY_TOKEN_QUOTA
    return Quota(daily=daily, monthly=monthly)


def period_starts(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The start of today and of this month, in the site's time zone."""
    today = timezone.localdate(now)
    day = timezone.make_aware(datetime.combine(today, clock_time.min))
    month = timezone.make_aware(datetime.combine(today.replace(day=1), clock_time.min))
    return day, month


def tokens_today_and_this_month(user) -> tuple[int, int]:
    """The person's tokens today and this month, from the running totals."""
    owner = (Rollup.Scope.USER, user.pk)
    spent = rollups.totals([owner])[owner]
    return spent.tokens_today, spent.tokens_month


def limits_of(user) -> tuple[Quota, list[budgets.Budget]]:
    """The person's token quota and every money budget they count against, in one query."""
    own, groups = budgets.limits_for(user)
    return quota_from(own), budgets.budgets_for(user, own=own, groups=groups)


def check_quota(user) -> None:
    """Raise LimitReached when the person has used their tokens, or a budget they count against is
    spent, for today or this month."""
    quota, limits = limits_of(user)
    if not (quota.daily or quota.monthly or limits):
        return
    owner = (Rollup.Scope.USER, user.pk)
    totals = rollups.totals([owner, *(budget.owner for budget in limits)])
    if quota.daily and totals[owner].tokens_today >= quota.daily:
        raise LimitReached(
            f"You have used your {quota.daily:,} tokens for today, so this message was not sent. "
            "Your quota starts again tomorrow; an admin can raise it."
        )
    if quota.monthly and totals[owner].tokens_month >= quota.monthly:
        raise LimitReached(
            f"You have used your {quota.monthly:,} tokens for this month, so this message was not sent. "
            "Your quota starts again next month; an admin can raise it."
        )
    try:
        budgets.check(limits, totals)
    except budgets.BudgetSpent as error:
        raise LimitReached(str(error)) from None


def check_rate(user_id: int, *, now: float | None = None) -> None:
    """Count one message for the person this minute; raise LimitReached past CHAT_RATE_LIMIT_PER_MINUTE."""
    limit = settings.CHAT_RATE_LIMIT_PER_MINUTE
    if not limit:
        return
    now = _clock() if now is None else now
    window = int(now // RATE_WINDOW_SECONDS)
    key = f"chatsite:rate:{user_id}:{window}"
    count = counters.count(key, timeout=RATE_WINDOW_SECONDS * 2)
    if count > limit:
        wait = RATE_WINDOW_SECONDS - int(now % RATE_WINDOW_SECONDS)
        raise LimitReached(
            f"You are sending messages faster than this site allows ({limit} a minute), so this one was not sent. "
            f"Try again in {wait} seconds."
        )


def check(user) -> None:
    """Everything checked before a message goes upstream; raises LimitReached."""
    check_quota(user)
    check_rate(user.pk)
