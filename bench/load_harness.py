"""Load and fault harness: many people chatting at once while the upstream misbehaves; then the
database is checked for lost, duplicated or unfinished messages.

What it starts (all on 127.0.0.1, all stopped at the end, on Ctrl+C and on errors):

* a copy of the app (stream_bench's `prepare_app`), migrated, with --users accounts, on a fresh
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

Each simulated user (one asyncio task; stream_bench's HTTP client on raw sockets) signs in
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
import collections
import json
import os
import random
import re
import secrets
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode, urlsplit

import stream_bench as sb

SERVER_ERROR = re.compile(r'HTTP/1\.1" 5\d\d ')
NUMBER = re.compile(r"/\d+")
STREAM_PATH = re.compile(r'data-stream-url="(/c/(\d+)/messages/(\d+)/stream/)"')
FILLER = "please tell me something about the weather the sea the mountains and the stars tonight"
NEW_CONVERSATION_EVERY = 5

# Run in the app copy by `manage.py shell`: every message and reply, as JSON on stdout.
CHECK_SCRIPT = """
import json
from conversations.models import Message
rows = Message.objects.values_list("id", "role", "status", "client_id", "content", "error_code", "error", "parent_id")
print("ROWS" + json.dumps([[r[0], r[1], r[2], str(r[3]) if r[3] else "", r[4], r[5], bool(r[6]), r[7]] for r in rows]))
"""


@dataclass
class Turn:
    user: int
    index: int
    client_id: str
    content: str
    streaming: bool
    doubled: bool = False
    submit_ns: int = 0
    posted_ns: int = 0
    done_ns: int = 0
    status: int = 0
    message_id: int = 0
    text: str = ""
    done: bool = False
    error: str = ""


@dataclass
class Totals:
    requests: collections.Counter = field(default_factory=collections.Counter)
    client_errors: collections.Counter = field(default_factory=collections.Counter)


class Person(sb.User):
    """A stream_bench user who keeps chatting: new conversations and follow-up messages."""

    def __init__(self, index: int, port: int, password: str, streaming: bool) -> None:
        super().__init__(index, port, password)
        self.streaming = streaming
        self.conversation = 0

    async def request(self, totals: Totals, method: str, path: str, headers: dict, body: bytes = b""):
        conn = await sb.HttpConnection.open(sb.HOST, self.port)
        try:
            totals.requests[method + " " + NUMBER.sub("/<id>", path.split("?")[0])] += 1
            return await conn.request(method, path, headers, body)
        finally:
            conn.close()

    async def send(self, turn: Turn, totals: Totals) -> None:
        if self.conversation and turn.index % NEW_CONVERSATION_EVERY:
            path, form = f"/c/{self.conversation}/messages/", {"content": turn.content, "client_id": turn.client_id}
        else:
            path, form = "/c/", {**self.fields, "content": turn.content, "client_id": turn.client_id}
        body = urlencode(form).encode()
        turn.submit_ns = time.time_ns()
        posts = [self.request(totals, "POST", path, self.composer_headers(), body)]
        if turn.doubled:  # a double click: the same message twice, at the same moment
            posts.append(self.request(totals, "POST", path, self.composer_headers(), body))
        responses = await asyncio.gather(*posts, return_exceptions=True)
        turn.posted_ns = time.time_ns()
        for response in responses:
            if isinstance(response, BaseException):
                raise response
            if response.status != 200:
                turn.status = response.status
                raise RuntimeError(f"POST {path} answered {response.status}")
        turn.status = 200
        # Of a double submit, one response shows the turn; the repeat answers with nothing to swap.
        matches = [STREAM_PATH.search(response.body().decode("utf-8", "replace")) for response in responses]
        match = next((m for m in matches if m), None)
        if not match:
            raise RuntimeError(f"POST {path} answered without a stream URL")
        stream_path, conversation, message = match.groups()
        self.conversation, turn.message_id = int(conversation), int(message)
        stream = await self.request(totals, "GET", stream_path + "?offset=0", self.event_source_headers())
        if stream.status != 200:
            raise RuntimeError(f"the stream answered {stream.status}")
        turn.done_ns = stream.end_ns
        turn.text, turn.done = read_events(stream.body())
        if not turn.done:
            raise RuntimeError("the stream ended without a done event")

    async def chat(self, turns: list[Turn], totals: Totals, deadline: float) -> None:
        for turn in turns:
            if time.monotonic() > deadline:
                turn.error = "not sent: time limit"
                continue
            try:
                await asyncio.wait_for(self.send(turn, totals), max(1.0, deadline - time.monotonic()))
            except TimeoutError:
                turn.error = "timeout"
            except Exception as exc:
                turn.error = f"{type(exc).__name__}: {exc}"
            if turn.error:
                totals.client_errors[re.sub(r"\d+", "N", turn.error)[:80]] += 1


def read_events(body: bytes) -> tuple[str, bool]:
    """The text of the `text` events and whether a `done` event came."""
    text, done = "", False
    for block in body.decode("utf-8", "replace").split("\n\n"):
        kind, data = "message", []
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                kind = value
            elif name == "data":
                data.append(value)
        if kind == "text":
            text += json.loads("\n".join(data))
        elif kind == "done":
            done = True
    return text, done


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


def manage(app: Path, env: dict, *command: str) -> str:
    result = subprocess.run(  # noqa: S603 - our own command
        [str(sb.PYTHON), "manage.py", *command], cwd=app, env=env, capture_output=True, text=True
    )
    if result.returncode:
        raise RuntimeError(f"manage.py {command[0]} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def check(rows: list, turns: list[Turn]) -> dict:
    users = [r for r in rows if r[1] == "user"]
    replies = [r for r in rows if r[1] == "assistant"]
    by_client = collections.Counter(r[3] for r in users if r[3])
    content_of = {r[0]: r[4] for r in users}
    sent = [t for t in turns if t.submit_ns]
    lost = [t for t in sent if by_client[t.client_id] == 0]
    duplicated = [t for t in sent if by_client[t.client_id] > 1]
    statuses = collections.Counter(r[2] for r in replies)
    labels = collections.Counter(f"{r[2]}:{r[5]}" for r in replies if r[2] != "complete")
    unfinished = [r for r in replies if r[2] in ("pending", "streaming")]
    unlabelled = [r for r in replies if r[2] in ("error", "interrupted") and not r[6]]
    # A complete reply is exactly the echo of its message (the fake upstream's answer).
    wrong = [r for r in replies if r[2] == "complete" and r[4] != "Echo: " + content_of.get(r[7], "")]
    stored = {r[0]: r for r in replies}
    followed_wrong = [
        t
        for t in turns
        if t.streaming
        and t.done
        and stored.get(t.message_id, [0, 0, ""])[2] == "complete"
        and t.text != stored[t.message_id][4]
    ]
    return {
        "messages sent": len(sent),
        "user messages stored": len(users),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "replies": len(replies),
        "reply statuses": dict(statuses),
        "labelled replies (status:code)": dict(labels),
        "unfinished replies (pending/streaming)": len(unfinished),
        "error replies without a reason": len(unlabelled),
        "complete replies with wrong text": len(wrong),
        "streamed text differing from the stored reply": len(followed_wrong),
    }


def percentile_ms(values_ns: list[int], p: float) -> float:
    return round(sb.percentile([v / 1e6 for v in values_ns], p), 1)


async def harness(args, tmp: Path, processes: sb.Processes) -> dict:
    app = sb.prepare_app(tmp, "worktree")
    upstream_port = sb.free_port()
    ports = {"stream": sb.free_port(), "whole": sb.free_port()}
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
    base_env = sb.app_environment(SimpleNamespace(app_env=app_env), tmp, ports["stream"], upstream_port)
    password = secrets.token_urlsafe(16)
    print(f"Preparing the app ({sb.source_description('worktree')}) on {args.engine} in {app} ...", flush=True)
    sb.prepare_database(app, base_env, args.users, password)

    upstream_command = [str(sb.PYTHON), "-m", "tests.fake_upstream", "--port", str(upstream_port)]
    upstream_command += ["--delay", str(args.word_delay_ms / 1000), "--faults", str(args.faults)]
    upstream_command += ["--seed", str(args.seed), "--retry-after", str(args.retry_after)]
    upstream_command += ["--slow-seconds", str(args.slow_seconds)]
    upstream = processes.start("upstream", upstream_command, cwd=sb.ROOT, env=os.environ.copy(), log=tmp / "up.log")
    await sb.wait_until_up(upstream_port, "/__stats", upstream, tmp / "up.log")

    servers = {}
    for kind, port in ports.items():
        env = {**base_env, "PORT": str(port), "CHAT_STREAMING": "1" if kind == "stream" else "0"}
        command = [str(sb.GUNICORN), "chatsite.wsgi", "--config", "gunicorn.conf.py"]
        servers[kind] = processes.start(kind, command, cwd=app, env=env, log=tmp / f"gunicorn-{kind}.log")
    for kind, port in ports.items():
        await sb.wait_until_up(port, "/healthz", servers[kind], tmp / f"gunicorn-{kind}.log")

    people = [Person(i, ports["stream" if i % 2 == 0 else "whole"], password, i % 2 == 0) for i in range(args.users)]
    await sb.sign_in_all(people, args.login_concurrency)

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

    stats_conn = await sb.HttpConnection.open(sb.HOST, upstream_port)
    try:
        upstream_stats = json.loads((await stats_conn.request("GET", "/__stats", {})).body())
    finally:
        stats_conn.close()
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


def missed_targets(report: dict) -> list[str]:
    missed = []
    for name in (
        "lost",
        "duplicated",
        "unfinished replies (pending/streaming)",
        "error replies without a reason",
        "complete replies with wrong text",
        "streamed text differing from the stored reply",
        "database is locked (server logs)",
        "HTTP 5xx answers (server logs)",
    ):
        if report[name]:
            missed.append(f"{name}: {report[name]}")
    if report["messages sent"] != report["users"] * report["messages per user"]:
        missed.append(f"only {report['messages sent']} of {report['users'] * report['messages per user']} sent")
    return missed


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
    if not sb.GUNICORN.exists():
        print(f"{sb.GUNICORN} is missing: install requirements.txt into .venv first", file=sys.stderr)
        return 2
    try:
        with sb.bench_run("chatsite-harness-", keep=args.keep, kept="gunicorn-*.log, up.log, db.sqlite3") as run:
            report = asyncio.run(harness(args, *run))
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
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
