"""History benchmark: server time and SQL queries of the sidebar, a long conversation and search.

Run it against a database seeded by `manage.py seed_history` (100,000 conversations,
1,000,000 messages), in-process through Django's test Client against the real views and
middleware (session and sign-in included; no network, no gunicorn):

    DATABASE_URL=sqlite:///var/bench/history.sqlite3 .venv/bin/python bench/history_bench.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chatsite_bench7 .venv/bin/python bench/history_bench.py

Each request is made `--runs` times after `--warmup` untimed ones; the median and p95 of
the wall time of `client.get` are printed, with the number of SQL queries of one request.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
os.environ.setdefault("SECRET_KEY", "history-bench-only-not-a-secret")
os.environ["DEBUG"] = "0"
os.environ["ALLOWED_HOSTS"] = "testserver"
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core import signals  # noqa: E402
from django.db import close_old_connections, connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from conversations.management.commands.seed_history import RARE_WORD  # noqa: E402
from conversations.models import Conversation  # noqa: E402
from conversations.sidebar import _cursor  # noqa: E402

# One connection for the whole run, as a server process keeps it (DATABASE_CONN_MAX_AGE), and
# so that the query count sees every query.
signals.request_started.disconnect(close_old_connections)
signals.request_finished.disconnect(close_old_connections)
# No collectstatic needed: {% static %} without the manifest.
settings.STORAGES = {
    **settings.STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}


def measure(client: Client, url: str, *, htmx: bool, runs: int, warmup: int, expect: str = "") -> dict:
    headers = {"HX-Request": "true"} if htmx else {}
    for _ in range(warmup):
        response = client.get(url, headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, headers=headers)
    count = len(queries)  # now: every request clears the log (django.db.reset_queries)
    if expect.encode() not in response.content:
        raise SystemExit(f"{url} does not show {expect!r}")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "median": statistics.median(times),
        "p95": times[min(len(times) - 1, round(len(times) * 0.95) - 1)],
        "queries": count,
        "bytes": len(response.content),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--username", default="bench")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    user = get_user_model().objects.get(username=args.username)
    owned = Conversation.objects.filter(owner=user)
    conversations = owned.count()
    messages = user.conversations.aggregate(n=django.db.models.Count("messages"))["n"]
    long_one = owned.get(title="One very long conversation")
    deep = owned.filter(deleted_at=None, archived_at=None, pinned_at=None).order_by("-updated_at", "-id")[50_000]
    client = Client()
    client.force_login(user)

    cases = [
        ("sidebar, whole start page (GET /)", "/", False),
        ("sidebar, page 1 fragment (GET /c/list/)", "/c/list/", True),
        ("sidebar, a page 50,000 rows down (load more)", f"/c/list/?cursor={_cursor(deep)}&group=Older", True),
        ("5,000-message conversation, newest 100 (GET /c/<id>/)", f"/c/{long_one.pk}/", False),
        ("5,000-message conversation, 100 older (scroll up)", None, True),
        (f"search, a word from one message ~45 days old ({RARE_WORD})", f"/c/list/?q={RARE_WORD}", True),
        ("search, a common word (30 newest matches)", "/c/list/?q=python", True),
        ("search, two words", "/c/list/?q=django+cache", True),
    ]
    first_page = client.get(f"/c/{long_one.pk}/").content.decode()
    import re

    older = re.search(r'hx-get="(/c/\d+/older/\?before=\d+&amp;leaf=\d+)"', first_page)[1].replace("&amp;", "&")
    print(
        f"{connection.vendor}: {conversations:,} conversations, {messages:,} messages; "
        f"{args.runs} runs after {args.warmup} warm-up requests"
    )
    print(f"{'request':62} {'median ms':>9} {'p95 ms':>8} {'queries':>7} {'KiB':>6}")
    expected = {f"/c/list/?q={RARE_WORD}": f"<mark>{RARE_WORD}</mark>", "/c/list/?q=python": "<mark>python</mark>"}
    for label, url, htmx in cases:
        result = measure(
            client, url or older, htmx=htmx, runs=args.runs, warmup=args.warmup, expect=expected.get(url, "")
        )
        print(
            f"{label:62} {result['median']:9.1f} {result['p95']:8.1f} {result['queries']:7d} "
            f"{result['bytes'] / 1024:6.0f}"
        )


if __name__ == "__main__":
    main()
