"""Cross-process relay benchmark: two gunicorn processes with the Redis bus, behind HAProxy.

What it starts (all on 127.0.0.1, all stopped at the end, on Ctrl+C and on errors):

* a copy of the app (as bench/stream_bench.py: the working tree, or --source <commit>), migrated,
  with --streams accounts, served by two gunicorn processes (the Procfile's command, one worker
  each) that share one SQLite database and one Redis (--redis-url, a database of its own: the
  bench empties it first) for sessions, the cache and the bus;
* HAProxy from Debian's package (`apt-get install haproxy`) with a generated configuration:
  round-robin per request over the two processes, each response naming its process
  (X-Bench-Server), and a request header (X-Bench-Stream-On) that sends a request to one of them;
* bench/fake_upstream.py, whose words carry the moment each was written (`ts<µs>`) and which
  stamps the moment a client closes a stream mid-way (Stop).

Each run is bench/stream_bench.py's (harness/relay.py): every user, at the same moment, posts a
message through HAProxy (landing on either process) and follows the reply's stream, which is
routed to the *other* process (--route other: relayed over the bus) or to the same one (--route
same: relayed from memory, the same-process figure on the same machine and proxy). Reported per
word: relay delay median and p99, and the first word's; every reply stored complete.

Then the Stop phase: every user starts a reply, follows it on the other process, and after
--stop-after words presses Stop on the process that is not generating it; Stop latency is
from the Stop request's sending to the upstream seeing its connection closed (and to the
stream's `done`), and every reply must be stored `stopped`.

    .venv/bin/python bench/bus_bench.py --streams 100 --runs 3
    .venv/bin/python bench/bus_bench.py --streams 100 --runs 0 --words 300 --stop-after 150 \
        --stop-on other --stop-on same
"""

import argparse
import asyncio
import json
import shutil
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import redis
from harness import BENCH, HOST, PYTHON
from harness.app import app_environment, prepare_app, prepare_database, saved_messages, serve
from harness.client import HttpConnection, fetch_json, wait_until_up
from harness.options import add_app_options
from harness.processes import Processes, free_port, run_bench, wait_for_quiet
from harness.relay import one_run
from harness.report import RunResult, percentile, print_summary
from harness.users import STREAM_URL, User, sign_in_all

HAPROXY_CONFIG = """global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    # Each request is balanced on its own; nothing is held back for a bigger packet.
    option http-server-close
    option http-no-delay
frontend web
    bind {host}:{port}
    default_backend app
backend app
    balance roundrobin
    http-response set-header X-Bench-Server %s
    use-server a if {{ req.hdr(x-bench-stream-on) -m str a }}
    use-server b if {{ req.hdr(x-bench-stream-on) -m str b }}
    server a {host}:{a}
    server b {host}:{b}
"""
OTHER = {"a": "b", "b": "a"}


class RoutedUser(User):
    """A user whose reply streams are sent to the other process than the one that took the POST
    (route "other") or to the same one ("same")."""

    route = "other"

    def stream_route(self, posted) -> dict:
        server = posted.header("x-bench-server")
        return {"X-Bench-Stream-On": OTHER.get(server, "") if self.route == "other" else server}


async def start_servers(args, tmp: Path, processes: Processes) -> tuple[list[User], dict, int, Path]:
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        raise RuntimeError("haproxy is not installed: apt-get update && apt-get install -y haproxy")
    redis.Redis.from_url(args.redis_url).flushdb()
    app = prepare_app(tmp, args.source)
    a_port, b_port, proxy_port, upstream_port = (free_port() for _ in range(4))
    env = app_environment(args, tmp, a_port, upstream_port)
    env.update(REDIS_URL=args.redis_url, WEB_CONCURRENCY="1")
    password = "bench-" + uuid.uuid4().hex
    print(f"Preparing the app in {app} ...", flush=True)
    prepare_database(app, env, args.streams, password)

    upstream_command = [str(PYTHON), str(BENCH / "fake_upstream.py"), "--port", str(upstream_port)]
    upstream_command += ["--words", str(args.words), "--interval-ms", str(args.interval_ms)]
    upstream = processes.start("upstream", upstream_command, cwd=BENCH, env=env, log=tmp / "upstream.log")
    await wait_until_up(upstream_port, "/__stats", upstream, tmp / "upstream.log")
    a = await serve(processes, "gunicorn-a", app, env, tmp / "gunicorn-a.log")
    b = await serve(processes, "gunicorn-b", app, {**env, "PORT": str(b_port)}, tmp / "gunicorn-b.log")
    config = tmp / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(host=HOST, port=proxy_port, a=a_port, b=b_port))
    proxy = processes.start("haproxy", [haproxy, "-db", "-f", str(config)], cwd=tmp, env=env, log=tmp / "haproxy.log")
    await wait_until_up(proxy_port, "/healthz", proxy, tmp / "haproxy.log")
    print(f"gunicorn a :{a_port}, b :{b_port}, HAProxy :{proxy_port}, Redis {args.redis_url}", flush=True)

    users = [RoutedUser(i, proxy_port, password) for i in range(args.streams)]
    await sign_in_all(users, args.login_concurrency)
    pids = {"gunicorn-a": a.pid, "gunicorn-b": b.pid, "upstream": upstream.pid, "haproxy": proxy.pid}
    return users, pids, upstream_port, tmp / "db.sqlite3"


async def stop_one(user: User, tag: str, start: asyncio.Event, after_words: int, stop_on: str) -> dict:
    """Start a reply, follow it on the other process, press Stop after `after_words` words on the
    process that is not generating it (`stop_on` "other") or on the one that is ("same")."""
    await start.wait()
    conn = await HttpConnection.open(HOST, user.port)
    form = {**user.fields, "client_id": str(uuid.uuid4()), "content": tag}
    posted = await conn.request("POST", "/c/", user.composer_headers(), urlencode(form).encode())
    conn.close()
    match = STREAM_URL.search(posted.body().decode("utf-8", "replace"))
    if posted.status != 200 or not match:
        return {"tag": tag, "error": f"POST /c/ answered {posted.status}"}
    elsewhere = {"X-Bench-Stream-On": OTHER.get(posted.header("x-bench-server"), "")}
    follower = await HttpConnection.open(HOST, user.port)
    stream = asyncio.create_task(
        follower.request("GET", match.group(1) + "?offset=0", {**user.event_source_headers(), **elsewhere})
    )
    while follower.response is None:  # the GET is written once the task runs
        await asyncio.sleep(0.001)
    while b"".join(data for _, data in follower.response.blocks).count(b"ts") < after_words:
        if stream.done():
            return {"tag": tag, "error": "the reply ended before Stop"}
        await asyncio.sleep(0.002)
    stopper = await HttpConnection.open(HOST, user.port)
    sent_us = time.time_ns() // 1000
    # Connection: close, since a 204 has no length to end it by in the harness's client.
    where = elsewhere if stop_on == "other" else {"X-Bench-Stream-On": posted.header("x-bench-server")}
    headers = {**user.composer_headers(), **where, "Connection": "close"}
    stopped = await stopper.request("POST", match.group(1).replace("/stream/", "/stop/"), headers)
    stopper.close()
    response = await asyncio.wait_for(stream, 60)
    follower.close()
    return {
        "tag": tag,
        "message_id": int(match.group(2)),
        "sent_us": sent_us,
        "done_us": response.end_ns // 1000,
        "status": stopped.status,
        "error": "" if stopped.status == 204 else f"Stop answered {stopped.status}",
    }


async def stop_phase(args, users: list[User], upstream_port: int, db: Path, stop_on: str) -> dict:
    start = asyncio.Event()
    # People do not all press Stop in the same millisecond: user i presses it after
    # --stop-after + i % --stop-spread words.
    tasks = [
        asyncio.create_task(
            stop_one(u, f"stop {u.index} {uuid.uuid4()}", start, args.stop_after + i % args.stop_spread, stop_on)
        )
        for i, u in enumerate(users)
    ]
    await asyncio.sleep(0.05)
    start.set()
    results = await asyncio.gather(*tasks)
    closed = (await fetch_json(upstream_port, "/__stats"))["closed_us"]
    good = [r for r in results if not r["error"]]
    upstream_ms = [(closed[r["tag"]] - r["sent_us"]) / 1000 for r in good if r["tag"] in closed]
    done_ms = [(r["done_us"] - r["sent_us"]) / 1000 for r in good]
    rows = saved_messages(db, [r["message_id"] for r in good], "status")
    stored = [row[0] for row in rows.values()]
    summary = {
        "replies": len(results),
        "errors": sorted({r["error"] for r in results if r["error"]}),
        "upstream_closed": len(upstream_ms),
        "stored_stopped": stored.count("stopped"),
        # The upstream had written every word before this Stop arrived (chatsite may still have
        # been reading them: such a reply is stored stopped or complete, both right).
        "upstream_done_before_stop": sum(1 for r in good if r["tag"] not in closed),
        "stored_complete": stored.count("complete"),
        "stop_to_upstream_closed_ms": {f"p{p}": round(percentile(upstream_ms, p), 2) for p in (50, 99)},
        "stop_to_done_ms": {f"p{p}": round(percentile(done_ms, p), 2) for p in (50, 99)},
    }
    summary["stop_to_upstream_closed_ms"]["max"] = round(max(upstream_ms, default=float("nan")), 2)
    print(f"  Stop pressed on the {stop_on} process: {json.dumps(summary)}", flush=True)
    return summary


async def bench(args, tmp: Path, processes: Processes) -> dict:
    users, pids, upstream_port, db = await start_servers(args, tmp, processes)
    if args.warmup:
        warm = await one_run(args, 0, users[:2], pids, upstream_port, db)
        if warm.errors or warm.completed != 2:
            raise RuntimeError(f"the warm-up conversations failed: {warm.errors}")
    report = {}
    for route in args.route if args.runs else []:
        RoutedUser.route = route
        print(f"\n{args.streams} concurrent stream(s), each followed on the {route} process, {args.runs} run(s):")
        results = []
        for run in range(1, args.runs + 1):
            await wait_for_quiet(args.quiet_percent, args.quiet_wait, pids)
            result = await one_run(args, run, users, pids, upstream_port, db)
            print_summary(result.summary())
            results.append(result)
            await asyncio.sleep(args.pause)
        overall = RunResult.combine(results).summary()
        if len(results) > 1:
            print("  all runs together:")
            print_summary(overall)
        report[route] = overall
    for stop_on in args.stop_on if args.stop_after else []:
        await wait_for_quiet(args.quiet_percent, args.quiet_wait, pids)
        report[f"stop on {stop_on}"] = await stop_phase(args, users, upstream_port, db, stop_on)
    for name, process in processes.children:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited during the run (its log is kept with --keep)")
    return report


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--streams", type=int, default=100, help="concurrent conversations (default 100)")
    parser.add_argument("--words", type=int, default=40, help="words per reply (default 40)")
    parser.add_argument("--interval-ms", type=float, default=20.0, help="time between words (default 20)")
    parser.add_argument("--first-token-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=3, help="timed runs per route (default 3)")
    parser.add_argument(
        "--route", action="append", choices=["other", "same"], help="where streams go (default: other, then same)"
    )
    parser.add_argument("--stop-after", type=int, default=10, help="words before Stop in the Stop phase (0: none)")
    parser.add_argument("--stop-spread", type=int, default=20, help="user i waits i %% this many words more")
    parser.add_argument(
        "--stop-on", action="append", choices=["other", "same"], help="where Stop is pressed (default: other)"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/8", help="a Redis database of the bench's own")
    parser.add_argument("--source", default="worktree", help="the code to serve: the working tree or a commit")
    parser.add_argument("--login-concurrency", type=int, default=4)
    parser.add_argument("--ramp-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between runs")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false")
    add_app_options(parser, each="run", writes="the summaries")
    args = parser.parse_args(argv)
    args.route = args.route or ["other", "same"]
    args.stop_on = args.stop_on or ["other"]
    if args.runs < 0 or args.stop_spread < 1:
        parser.error("--runs must be at least 0 (0: the Stop phase only), --stop-spread at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    report = run_bench(bench, args, prefix="chatsite-bus-bench-", kept="gunicorn-*.log, haproxy.cfg, db.sqlite3")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "report": report}))
    failed = any(
        r["errors"] or r["completed"] != r["streams"] or r["database"]["complete_full"] != r["streams"]
        for route, r in report.items()
        if not route.startswith("stop")
    )
    stops = [r for route, r in report.items() if route.startswith("stop")]
    failed = failed or any(
        r["errors"] or r["stored_stopped"] + min(r["upstream_done_before_stop"], r["stored_complete"]) != r["replies"]
        for r in stops
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
