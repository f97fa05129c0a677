"""Load and fault harness: many people chatting at once while the upstream misbehaves; then the
database is checked for lost, duplicated or unfinished messages.

What it starts (all on 127.0.0.1, all stopped at the end, on Ctrl+C and on errors):

* a copy of the app (bench/harness's `prepare_app`), migrated, with --users accounts, on a fresh
  database: a SQLite file (`--engine sqlite`), or a PostgreSQL database that is dropped and
  created again (`--engine postgres --database-url ...`, with sessions and the cache in Redis,
  `--redis-url`);
* two gunicorn servers with the Procfile's command and gunicorn.conf.py (gthread, 1 worker,
  160 threads each) on that one database: one with CHAT_STREAMING=1, one with CHAT_STREAMING=0.
  CHAT_STREAMING is a setting of the process, so the harness gives each person one of the two:
  even-numbered users chat with the streaming server, odd-numbered ones with the other. Both
  kinds of reply are generated at the same time, and two processes share the database;
* tests/fake_upstream.py in its own process, echoing each message word by word, and failing a
  share (--faults, default 10 %) of the requests, drawn with --seed: 429 with Retry-After,
  500, a slow first answer (--slow-seconds), or an answer cut in the middle.

Each simulated user (one asyncio task; the harness's HTTP client on raw sockets) signs in
through the login form, then sends --messages messages one after the other, as the page does:
the composer's POST (a new conversation every fifth message, else the next message of the
current one), then the reply's server-sent-events stream until its `done` event. A share of
the submits (--double-submits, default 5 %) is sent twice at once with the same client_id, as
a double click does. The run is bounded by --time-limit.

Then the database is read through the ORM (manage.py shell in the app copy, so both engines are
read the same way) and checked:
* every message sent exists exactly once (by client_id): lost = 0, duplicated = 0;
* every reply is `complete` with exactly the text the upstream echoed, or labelled (`error`,
  `interrupted`, `stopped`) with a reason; none is left `pending` or `streaming`;
* a complete reply followed over SSE from the streaming server arrived with exactly its text;
* the server logs contain no "database is locked" and no HTTP 5xx answer (tracebacks are
  counted too).

Reported: requests, errors by kind (client side, and the labels of the replies), faults the
upstream injected, POST latency and submit-to-done latency (p50/p99), and the load average.

    .venv/bin/python bench/load_harness.py --engine sqlite
    .venv/bin/python bench/load_harness.py --engine postgres \\
        --database-url postgres://postgres@127.0.0.1:5432/chatsite_bench --redis-url redis://127.0.0.1:6379/0

The exit status is 1 when a target is missed (lost, duplicated, unfinished or corrupted
messages, or "database is locked").
"""

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

from harness import PYTHON, ROOT
from harness.app import app_environment, manage, prepare_app, prepare_database, serve, source_description
from harness.client import fetch_json, wait_until_up
from harness.durability import CHECK_SCRIPT, Person, Totals, Turn, check, missed_targets
from harness.processes import Processes, free_port, run_bench
from harness.report import percentile
from harness.users import sign_in_all

SERVER_ERROR = re.compile(r'HTTP/1\.1" 5\d\d ')
FILLER = "please tell me something about the weather the sea the mountains and the stars tonight"


# --- the database, the servers and the check --------------------------------------------------


def fresh_postgres(url: str) -> None:
    """Drop and create the bench database (the server's `postgres` database is used to do it)."""
    import psycopg  # the project's venv has it; imported here so the SQLite run needs nothing more

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise SystemExit(f"unexpected database name {name!r}")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def percentile_ms(values_ns: list[int], p: float) -> float:
    return round(percentile([v / 1e6 for v in values_ns], p), 1)


async def harness(args, tmp: Path, processes: Processes) -> dict:
    app = prepare_app(tmp, "worktree")
    upstream_port = free_port()
    ports = {"stream": free_port(), "whole": free_port()}
    # The per-person rate limit (20 a minute by default) would refuse part of 20 messages sent
    # back to back; the harness measures durability, so it is off unless --app-env sets it.
    app_env = [
        f"REDIS_URL={args.redis_url if args.engine == 'postgres' else ''}",
        "CHAT_RATE_LIMIT_PER_MINUTE=0",
        *args.app_env,
    ]
    if args.engine == "postgres":
        fresh_postgres(args.database_url)
        app_env.append(f"DATABASE_URL={args.database_url}")
    base_env = app_environment(SimpleNamespace(app_env=app_env), tmp, ports["stream"], upstream_port)
    password = secrets.token_urlsafe(16)
    print(f"Preparing the app ({source_description('worktree')}) on {args.engine} in {app} ...", flush=True)
    prepare_database(app, base_env, args.users, password)

    upstream_command = [str(PYTHON), "-m", "tests.fake_upstream", "--port", str(upstream_port)]
    upstream_command += ["--delay", str(args.word_delay_ms / 1000), "--faults", str(args.faults)]
    upstream_command += ["--seed", str(args.seed), "--retry-after", str(args.retry_after)]
    upstream_command += ["--slow-seconds", str(args.slow_seconds)]
    upstream = processes.start("upstream", upstream_command, cwd=ROOT, env=os.environ.copy(), log=tmp / "up.log")
    await wait_until_up(upstream_port, "/__stats", upstream, tmp / "up.log")

    servers = {}
    for kind, port in ports.items():
        env = {**base_env, "PORT": str(port), "CHAT_STREAMING": "1" if kind == "stream" else "0"}
        servers[kind] = await serve(processes, kind, app, env, tmp / f"gunicorn-{kind}.log")

    people = [Person(i, ports["stream" if i % 2 == 0 else "whole"], password, i % 2 == 0) for i in range(args.users)]
    await sign_in_all(people, args.login_concurrency)

    rng = random.Random(args.seed)  # noqa: S311 - which messages are doubled, not a secret
    plans = {
        person.index: [
            Turn(
                user=person.index,
                index=m,
                client_id=str(uuid.uuid4()),
                content=f"harness user {person.index} message {m} {uuid.uuid4().hex[:8]} {FILLER}",
                streaming=person.streaming,
                doubled=rng.random() < args.double_submits,
            )
            for m in range(args.messages)
        ]
        for person in people
    }
    totals = Totals()
    load_before = os.getloadavg()
    print(
        f"{args.users} users x {args.messages} messages, {args.faults:.0%} injected faults (seed {args.seed}), "
        f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}",
        flush=True,
    )
    started = time.monotonic()
    deadline = started + args.time_limit
    await asyncio.gather(*(person.chat(plans[person.index], totals, deadline) for person in people))
    wall = time.monotonic() - started
    load_after = os.getloadavg()

    upstream_stats = await fetch_json(upstream_port, "/__stats")
    # Replies still being written when the last client gave up get their chance to finish.
    await asyncio.sleep(1.0)
    output = manage(app, base_env, "shell", "-c", CHECK_SCRIPT)
    rows = json.loads(output[output.index("ROWS") + 4 :])
    turns = [turn for plan in plans.values() for turn in plan]
    result = check(rows, turns)
    logs = [(tmp / f"gunicorn-{kind}.log").read_text(errors="replace") for kind in ports]
    locked = sum(log.count("database is locked") for log in logs)
    server_errors = sum(len(SERVER_ERROR.findall(log)) for log in logs)
    tracebacks = sum(log.count("Traceback (most recent call last)") for log in logs)
    posted = [t.posted_ns - t.submit_ns for t in turns if t.status == 200]
    done = [t.done_ns - t.submit_ns for t in turns if t.done]
    by_kind = {}
    for kind, streaming in (("streamed", True), ("whole", False)):
        times = [t.done_ns - t.submit_ns for t in turns if t.done and t.streaming == streaming]
        by_kind[kind] = {"submit to done p50/p99 ms": [percentile_ms(times, 50), percentile_ms(times, 99)]}
    report = {
        "engine": args.engine + (" + Redis" if args.engine == "postgres" else ""),
        "users": args.users,
        "messages per user": args.messages,
        "injected fault rate": args.faults,
        "seed": args.seed,
        "wall seconds": round(wall, 1),
        "http requests": dict(totals.requests),
        "http requests total": sum(totals.requests.values()),
        "double submits": sum(t.doubled for t in turns),
        "client errors": dict(totals.client_errors),
        "upstream requests": upstream_stats["requests"],
        "upstream faults injected": upstream_stats["faults"],
        **result,
        "database is locked (server logs)": locked,
        "HTTP 5xx answers (server logs)": server_errors,
        "tracebacks (server logs)": tracebacks,
        "POST p50/p99 ms": [percentile_ms(posted, 50), percentile_ms(posted, 99)],
        "submit to done p50/p99 ms": [percentile_ms(done, 50), percentile_ms(done, 99)],
        "by kind": by_kind,
        "load average before": [round(x, 2) for x in load_before],
        "load average after": [round(x, 2) for x in load_after],
        "cores": os.cpu_count(),
    }
    for kind, process in servers.items():
        if process.poll() is not None:
            report[f"gunicorn {kind} exited"] = process.returncode
    return report


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--database-url",
        default="postgres://postgres@127.0.0.1:5432/chatsite_bench",
        help="PostgreSQL database for --engine postgres: DROPPED and created again (default %(default)s)",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="Redis for --engine postgres")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--messages", type=int, default=20, help="messages per user (default 20)")
    parser.add_argument("--faults", type=float, default=0.10, help="share of upstream requests that fail (0.10)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--double-submits", type=float, default=0.05, help="share of messages sent twice (0.05)")
    parser.add_argument("--word-delay-ms", type=float, default=10.0, help="between the echo's words (10)")
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After of an injected 429 (1 s)")
    parser.add_argument("--slow-seconds", type=float, default=2.0, help="delay of an injected slow answer (2 s)")
    parser.add_argument("--time-limit", type=float, default=300.0, help="the run stops sending after this (300 s)")
    parser.add_argument("--login-concurrency", type=int, default=4)
    parser.add_argument("--app-env", action="append", default=[], metavar="NAME=VALUE", help="extra app setting")
    parser.add_argument("--json", type=Path, help="also write the report to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, SQLite database)")
    args = parser.parse_args(argv)
    if args.users < 1 or args.messages < 1 or not 0 <= args.faults <= 1:
        parser.error("--users and --messages must be at least 1, --faults between 0 and 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    report = run_bench(harness, args, prefix="chatsite-harness-", kept="gunicorn-*.log, up.log, db.sqlite3")
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    missed = missed_targets(report)
    for line in missed:
        print(f"TARGET MISSED: {line}")
    if not missed:
        print("All targets met: 0 lost, 0 duplicated, 0 unfinished, 0 'database is locked'.")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
