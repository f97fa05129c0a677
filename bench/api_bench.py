"""API benchmark: what /v1/chat/completions adds to a streamed reply, against the upstream asked directly.

The same stamp method as bench/stream_bench.py: bench/fake_upstream.py writes each word as
`ts<µs since the epoch> `, the moment its bytes went to the socket, and this client (asyncio, raw
sockets, harness.client) stamps each block on arrival. For each concurrency (--streams, default
1 and 50) it runs N streams at once, each with its own account and personal token, first
straight to the fake upstream, then through chatsite's `/v1/chat/completions` (gunicorn with the
Procfile's command, DEBUG=0, SQLite), and reports per word:

* relay delay: arrival minus emit time (median, p99, max), for both paths;
* first word: the delay of each stream's first word, and the time to first token from the
  request (median, p95); the figure to read is chatsite's minus the direct one.

    .venv/bin/python bench/api_bench.py
    .venv/bin/python bench/api_bench.py --streams 1 50 --runs 3 --words 40 --interval-ms 20
    .venv/bin/python bench/api_bench.py --streams 50 --ramp-ms 1000   # the same streams, not all at once

The exit status is 1 when any stream failed or its text differs from what the upstream sent.
"""

import argparse
import asyncio
import json
import os
import re
import secrets
import sys
import time
import uuid
from pathlib import Path

from harness import BENCH, HOST, PYTHON
from harness.app import app_environment, manage, prepare_app, prepare_database, serve, source_description
from harness.client import HttpConnection, fetch_json, wait_until_up
from harness.options import add_app_options
from harness.processes import Processes, free_port, run_bench, wait_for_quiet
from harness.report import percentile

WORD = re.compile(r"ts(\d+) ")

TOKENS_CODE = (
    "import json\n"
    "from django.contrib.auth import get_user_model\n"
    "from api.tokens import token_create\n"
    "users = get_user_model().objects.filter(username__startswith='bench').order_by('pk')\n"
    "print(json.dumps([token_create(owner=user, name='bench')[1] for user in users]))\n"
)


async def one_stream(port: int, path: str, token: str, tag: str, start: asyncio.Event, delay: float) -> dict:
    """One streamed completion: each word's (emit µs, arrival µs), the request time, the text."""
    body = json.dumps({"model": "bench/fake", "messages": [{"role": "user", "content": tag}], "stream": True}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    conn = await HttpConnection.open(HOST, port)
    await start.wait()
    if delay:
        await asyncio.sleep(delay)
    try:
        sent_ns = time.time_ns()
        response = await conn.request("POST", path, headers, body)
    finally:
        conn.close()
    if response.status != 200:
        return {"error": f"HTTP {response.status}: {response.body()[:200]!r}"}
    text, words, done = "", [], False
    for now, event in response.events():
        if event.data == "[DONE]":
            done = True
            continue
        chunk = json.loads(event.data)
        for choice in chunk.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content") or ""
            text += piece
            words += [(int(m.group(1)), now // 1000) for m in WORD.finditer(piece)]
    return {"text": text, "words": words, "sent_us": sent_ns // 1000, "tag": tag, "error": "" if done else "no [DONE]"}


async def one_run(port: int, path: str, tokens: list[str], upstream_port: int, ramp_ms: float = 0.0) -> dict:
    start = asyncio.Event()
    tasks = [
        asyncio.create_task(
            one_stream(port, path, token, f"api bench {uuid.uuid4()}", start, ramp_ms / 1000 * i / len(tokens))
        )
        for i, token in enumerate(tokens)
    ]
    await asyncio.sleep(0.05)
    start.set()
    streams = await asyncio.gather(*tasks)
    sent = (await fetch_json(upstream_port, "/__stats"))["replies"]
    errors = [s["error"] for s in streams if s["error"]]
    errors += [
        "the text differs from what the upstream sent"
        for s in streams
        if not s["error"] and s["text"] != sent.get(s["tag"])
    ]
    relay = [(arrival - emit) / 1000 for s in streams if not s["error"] for emit, arrival in s["words"]]
    first = [(s["words"][0][1] - s["words"][0][0]) / 1000 for s in streams if s.get("words")]
    ttft = [(s["words"][0][1] - s["sent_us"]) / 1000 for s in streams if s.get("words")]
    return {"errors": errors, "relay": relay, "first": first, "ttft": ttft}


def summary(results: list[dict]) -> dict:
    def joined(name):
        return [value for result in results for value in result[name]]

    relay, first, ttft = joined("relay"), joined("first"), joined("ttft")
    return {
        "errors": joined("errors"),
        "words": len(relay),
        "relay_p50": percentile(relay, 50),
        "relay_p99": percentile(relay, 99),
        "relay_max": max(relay, default=float("nan")),
        "first_p50": percentile(first, 50),
        "first_p95": percentile(first, 95),
        "ttft_p50": percentile(ttft, 50),
        "ttft_p95": percentile(ttft, 95),
    }


def show(label: str, s: dict) -> None:
    print(
        f"    {label:9} {s['words']:6} words: relay median {s['relay_p50']:.2f} ms, p99 {s['relay_p99']:.2f} ms, "
        f"max {s['relay_max']:.2f} ms; first word median {s['first_p50']:.2f} ms, p95 {s['first_p95']:.2f} ms; "
        f"time to first token median {s['ttft_p50']:.1f} ms, p95 {s['ttft_p95']:.1f} ms; {len(s['errors'])} errors"
    )
    for error in sorted(set(s["errors"]))[:3]:
        print(f"      error: {error}")


async def bench(args, tmp: Path, processes: Processes) -> list[dict]:
    app = prepare_app(tmp, args.source)
    app_port, upstream_port = free_port(), free_port()
    # One budget for the bench's accounts: no rate limit, so the runs measure relaying only.
    args.app_env = ["CHAT_RATE_LIMIT_PER_MINUTE=0", *args.app_env]
    env = app_environment(args, tmp, app_port, upstream_port)
    most = max(args.streams)
    print(f"Preparing the app ({source_description(args.source)}) in {app} ...", flush=True)
    prepare_database(app, env, most, secrets.token_urlsafe(16))
    tokens = json.loads(manage(app, env, "shell", "-c", TOKENS_CODE).strip().splitlines()[-1])

    command = [str(PYTHON), str(BENCH / "fake_upstream.py"), "--port", str(upstream_port), "--words", str(args.words)]
    command += ["--interval-ms", str(args.interval_ms), "--first-token-ms", str(args.first_token_ms)]
    upstream = processes.start("upstream", command, cwd=BENCH, env=os.environ.copy(), log=tmp / "upstream.log")
    await wait_until_up(upstream_port, "/__stats", upstream, tmp / "upstream.log")
    server = await serve(processes, "gunicorn", app, env, tmp / "gunicorn.log")
    pids = {"gunicorn": server.pid, "upstream": upstream.pid}
    print(
        f"gunicorn (pid {server.pid}) on {HOST}:{app_port}; fake upstream on {HOST}:{upstream_port}: "
        f"{args.words} words, {args.interval_ms:g} ms apart",
        flush=True,
    )
    await one_run(app_port, "/v1/chat/completions", tokens[:1], upstream_port)  # warm-up, untimed

    paths = {"direct": (upstream_port, "/v1/chat/completions"), "chatsite": (app_port, "/v1/chat/completions")}
    summaries = []
    for streams in args.streams:
        print(f"\n{streams} concurrent stream(s), {args.runs} run(s) each:", flush=True)
        row = {"streams": streams}
        for label, (port, path) in paths.items():
            results = []
            for _ in range(args.runs):
                await wait_for_quiet(args.quiet_percent, args.quiet_wait, pids)
                results.append(await one_run(port, path, tokens[:streams], upstream_port, args.ramp_ms))
            row[label] = summary(results)
            show(label, row[label])
        added_first = row["chatsite"]["first_p50"] - row["direct"]["first_p50"]
        added_ttft = row["chatsite"]["ttft_p50"] - row["direct"]["ttft_p50"]
        print(
            f"    added by chatsite: first word median +{added_first:.2f} ms "
            f"(time to first token +{added_ttft:.1f} ms), "
            f"relay p99 {row['chatsite']['relay_p99']:.2f} ms vs {row['direct']['relay_p99']:.2f} ms direct"
        )
        summaries.append(row)
    if server.poll() is not None:
        raise RuntimeError(f"gunicorn exited during the run:\n{(tmp / 'gunicorn.log').read_text()[-3000:]}")
    return summaries


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 50], help="concurrencies (default 1 50)")
    parser.add_argument("--words", type=int, default=40, help="words per reply (default 40)")
    parser.add_argument("--interval-ms", type=float, default=20.0, help="time between words (default 20)")
    parser.add_argument("--first-token-ms", type=float, default=0.0, help="upstream delay before the first word")
    parser.add_argument("--ramp-ms", type=float, default=0.0, help="spread the requests over this long (default 0)")
    parser.add_argument("--runs", type=int, default=3, help="runs per concurrency and path (default 3)")
    parser.add_argument("--source", default="worktree", help="the working tree (default) or a commit")
    add_app_options(parser, each="run", writes="the summaries")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    summaries = run_bench(bench, args, prefix="chatsite-api-bench-", kept="gunicorn.log, upstream.log, db.sqlite3")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "runs": summaries}))
    return 1 if any(row[path]["errors"] for row in summaries for path in ("direct", "chatsite")) else 0


if __name__ == "__main__":
    sys.exit(main())
