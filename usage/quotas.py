"""Limits checked before a message is sent upstream: a per-person rate limit and token quotas.

The rate limit counts in Django's cache, in a per-person key per clock minute (a counter of
common.counters, atomic in Redis), so with REDIS_URL every gunicorn process and host shares one
count; the default local-memory cache counts per process. Quotas count the tokens of stored
`Usage` rows, today and this calendar month (in TIME_ZONE).
"""

import time
from dataclasses import dataclass
from datetime import datetime
from datetime import time as clock_time

from django.conf import settings
from django.db.models import Q, Sum
from django.utils import timezone

from common import counters
from usage.models import Usage, UserQuota

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
    own = UserQuota.objects.filter(user=user).first()
    daily = own.daily_tokens if own and own.daily_tokens is not None else settings.CHAT_DAILY_TOKEN_QUOTA
    monthly = own.monthly_tokens if own and own.monthly_tokens is not None else settings.CHAT_MONTHLY_TOKEN_QUOTA
    return Quota(daily=daily, monthly=monthly)


def period_starts(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The start of today and of this month, in the site's time zone."""
    today = timezone.localdate(now)
    day = timezone.make_aware(datetime.combine(today, clock_time.min))
    month = timezone.make_aware(datetime.combine(today.replace(day=1), clock_time.min))
    return day, month


def tokens_used(user, *, since: datetime) -> int:
    total = Usage.objects.filter(user=user, created_at__gte=since).aggregate(total=Sum("total_tokens"))["total"]
    return total or 0


def tokens_today_and_this_month(user) -> tuple[int, int]:
    """Both counts in one pass over this month's rows (the `usage_user_time` index holds them all)."""
    day, month = period_starts()
    totals = Usage.objects.filter(user=user, created_at__gte=month).aggregate(
        today=Sum("total_tokens", filter=Q(created_at__gte=day)), month=Sum("total_tokens")
    )
    return totals["today"] or 0, totals["month"] or 0


def check_quota(user) -> None:
    """Raise LimitReached when the person has used their tokens for today or this month."""
    quota = quota_for(user)
    if not (quota.daily or quota.monthly):
        return
    today, this_month = tokens_today_and_this_month(user)
    if quota.daily and today >= quota.daily:
        raise LimitReached(
            f"You have used your {quota.daily:,} tokens for today, so this message was not sent. "
            "Your quota starts again tomorrow; an admin can raise it."
        )
    if quota.monthly and this_month >= quota.monthly:
        raise LimitReached(
            f"You have used your {quota.monthly:,} tokens for this month, so this message was not sent. "
            "Your quota starts again next month; an admin can raise it."
        )


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
