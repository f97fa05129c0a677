#!/usr/bin/env python
"""What the admin's rules cost each message: the checks before a send, the key lookup before a reply,
and the usage row after it, at 0 to 10 million usage rows in the month.

Every message passes `services.turns._check_can_ask` (is the model turned off? the person's tokens
today and this month against their quota, their money against their own, their group's and the
site's budgets, from the running totals of `usage.rollups`; the rate limit in the cache) before it
is stored; every reply calls `keys.resolve_key` (own key, group key, site default; one Fernet
decryption) before the upstream call and `usage.services.record` (the priced row and its totals,
one transaction) after it. This measures them in-process on a fresh database (a SQLite file in a
temporary directory, or the PostgreSQL database --database-url names, dropped and made again), for
a person who has 0 to N usage rows this month, seeded in bulk SQL (a recursive CTE on SQLite,
generate_series on PostgreSQL, its foreign keys unchecked), with the totals rebuilt from the rows
by `rebuild_usage_rollups`'s function (timed). "sum of rows" times the query the quota ran before the totals existed.

The bench's clock stands at the month's last evening, so the month's rows span every day of it
and the check reads a full month of day totals for each owner: its costliest case.

    .venv/bin/python bench/admin_checks_bench.py
    .venv/bin/python bench/admin_checks_bench.py --rows 0 100000 10000000 --reps 300 \\
        --database-url postgres://postgres@127.0.0.1:5432/wt_money_bench
"""

import argparse
import base64
import calendar
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MODEL = "mistralai/mistral-tiny"


def _fresh_postgres(url: str) -> None:
    import psycopg
    from psycopg import sql

    server, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _setup(directory: str, database_url: str) -> None:
    os.environ.update(
        {
            "DEBUG": "0",
            "SECRET_KEY": base64.urlsafe_b64encode(os.urandom(40)).decode(),
            "FIELD_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "CHATSITE_ENV_FILE": os.path.join(directory, "no-env-file"),
            "DATABASE_URL": database_url or f"sqlite:///{directory}/db.sqlite3",
            # Limits high enough never to refuse, but set: the bench measures the checking, not a refusal.
            "CHAT_DAILY_TOKEN_QUOTA": "1000000000000000",
            "CHAT_MONTHLY_TOKEN_QUOTA": "1000000000000000",
            "CHAT_RATE_LIMIT_PER_MINUTE": "2000000000",
            "CHAT_MONTHLY_BUDGET": "100000000",
            "CHAT_DAILY_BUDGET": "100000000",
            "CHAT_SITE_MONTHLY_BUDGET": "100000000",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        }
    )
    os.environ.pop("REDIS_URL", None)
    if database_url:
        _fresh_postgres(database_url)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _month_end_clock() -> datetime:
    """Hold Django's clock at 22:00 on the last day of this month (TIME_ZONE)."""
    from django.utils import timezone

    today = timezone.localdate()
    last = today.replace(day=calendar.monthrange(today.year, today.month)[1])
    now = timezone.make_aware(datetime.combine(last, datetime.min.time()) + timedelta(hours=22))
    timezone.now = lambda: now  # the checks and the rebuild read the day through timezone.now
    return now


def _seed(*, user_id: int, key_id: int, count: int, start: datetime, end: datetime) -> None:
    """`count` usage rows of one person spread evenly from `start` to `end`, in one INSERT … SELECT."""
    from django.db import connection, transaction

    span = (end - start).total_seconds()
    first = start.timestamp()
    if connection.vendor == "sqlite":
        statement = (
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < %s) "
            "INSERT INTO conversations_usage (user_id, key_id, key_label, model, message_id, prompt_tokens, "
            "completion_tokens, total_tokens, latency_ms, first_token_ms, tokens_estimated, input_price, "
            "output_price, cost, status, source, error_code, created_at) "
            "SELECT %s, %s, 'Team key', %s, NULL, 9, 1 + i %% 700, 10 + i %% 700, 900, 300, 0, 5, 15, "
            "(9 * 5 + (1 + i %% 700) * 15) / 1000000.0, 'complete', 'chat', '', "
            "strftime('%%Y-%%m-%%d %%H:%%M:%%f', %s + i * %s / %s, 'unixepoch') FROM n"
        )
        params = [count, user_id, key_id, MODEL, first, span, count]
    else:
        statement = (
            "INSERT INTO conversations_usage (user_id, key_id, key_label, model, message_id, prompt_tokens, "
            "completion_tokens, total_tokens, latency_ms, first_token_ms, tokens_estimated, input_price, "
            "output_price, cost, status, source, error_code, created_at) "
            "SELECT %s, %s, 'Team key', %s, NULL, 9, 1 + i %% 700, 10 + i %% 700, 900, 300, false, 5, 15, "
            "(9 * 5 + (1 + i %% 700) * 15) / 1000000.0, 'complete', 'chat', '', "
            "to_timestamp(%s + i * %s / %s) FROM generate_series(0, %s - 1) AS i"
        )
        params = [user_id, key_id, MODEL, first, span, count, count]
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Django's foreign keys are checked at COMMIT, one lookup per row: 10 million rows took
            # over ten minutes there. The seed's keys are known good, so this session skips them.
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(statement, params)


def _timed(function, reps: int) -> tuple[float, float, float]:
    """Median and p99 of the wall time, and the median of this process's CPU time, in ms.

    On a machine shared with other work the wall time counts the moments the process waits for a
    core; its CPU time does not, so it says what the call itself costs."""
    wall, cpu = [], []
    for _ in range(reps):
        started, used = time.perf_counter(), time.process_time()
        function()
        cpu.append((time.process_time() - used) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    wall.sort()
    return statistics.median(wall), wall[max(int(len(wall) * 0.99) - 1, 0)], statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[0, 100_000, 10_000_000], help="rows in the month")
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--sum-reps", type=int, default=10, help="reps of the old sum of rows (slow at 10M)")
    parser.add_argument("--database-url", default="", help="a PostgreSQL database to drop and make again")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="chatsite-admin-bench-") as directory:
        _setup(directory, args.database_url)
        from django.contrib.auth.models import Group, User
        from django.db import connection
        from django.db.models import Q, Sum
        from django.utils import timezone

        from conversations.services import turns
        from providers import keys
        from providers.models import ChatModel, ProviderKey
        from usage import quotas, rollups
        from usage.models import GroupBudget, Rollup, Usage
        from usage.services import record

        now = _month_end_clock()
        month_start = quotas.period_starts()[1]
        group = Group.objects.create(name="team")
        GroupBudget.objects.create(group=group, monthly_budget=Decimal("9000000"), daily_budget=Decimal("1000000"))
        ChatModel.objects.update_or_create(
            model_id=MODEL, defaults={"display_name": "Tiny", "input_price": 5, "output_price": 15}
        )
        key = ProviderKey(label="Team key", base_url="http://127.0.0.1:9/v1")
        keys.set_secret(key, "sk-bench-" + base64.urlsafe_b64encode(os.urandom(24)).decode())
        key.save()
        key.groups.add(group)
        ProviderKey.objects.create(label="Default", is_default=True, secret_encrypted=key.secret_encrypted, last4="x")

        print(
            f"{connection.vendor}; clock at {timezone.localtime(now):%Y-%m-%d %H:%M}; "
            "ms: wall median / wall p99 / CPU median"
        )
        header = ("rows", "seed s", "rebuild s", "checks", "sum of rows", "resolve_key", "record()")
        print(" | ".join(f"{name:>24}" if index > 2 else f"{name:>10}" for index, name in enumerate(header)))
        for count in args.rows:
            user = User.objects.create_user(username=f"person{count}")
            user.groups.add(group)
            started = time.perf_counter()
            if count:
                _seed(user_id=user.pk, key_id=key.pk, count=count, start=month_start, end=now - timedelta(minutes=1))
            seeded = time.perf_counter() - started
            started = time.perf_counter()
            rollups.rebuild()
            rebuilt = time.perf_counter() - started
            print(f"  {count:,} rows: seeded in {seeded:.1f} s, totals rebuilt in {rebuilt:.1f} s", flush=True)
            if quotas.tokens_today_and_this_month(user)[1] != (
                Usage.objects.filter(user=user).aggregate(total=Sum("total_tokens"))["total"] or 0
            ):
                raise SystemExit("the totals differ from the rows: the figures would be wrong")
            owners = Rollup.objects.filter(Q(scope="user", owner_id=user.pk) | Q(scope="group") | Q(scope="site"))
            days = owners.filter(day__gte=month_start.date()).count()

            check = _timed(lambda user=user: turns._check_can_ask(user, MODEL), args.reps)
            old_sum = _timed(
                lambda user=user: Usage.objects.filter(user=user, created_at__gte=month_start).aggregate(
                    Sum("total_tokens")
                ),
                args.sum_reps,
            )
            resolve = _timed(lambda user=user: keys.resolve_key(user), args.reps)
            write = _timed(
                lambda user=user: record(
                    user_id=user.pk, key=key, model=MODEL, status="complete", prompt_tokens=9, completion_tokens=20
                ),
                args.reps,
            )
            if keys.resolve_key(user).provider_key != key:
                raise SystemExit("resolve_key did not find the group's key: the figures would be wrong")
            cells = [
                f"{count:,}",
                f"{seeded:.1f}",
                f"{rebuilt:.1f}",
                *(f"{median:.2f} / {p99:.2f} / {cpu:.2f}" for median, p99, cpu in (check, old_sum, resolve, write)),
            ]
            row = " | ".join(f"{cell:>24}" if index > 2 else f"{cell:>10}" for index, cell in enumerate(cells))
            print(row, f"({days} day totals read)", flush=True)


if __name__ == "__main__":
    main()
