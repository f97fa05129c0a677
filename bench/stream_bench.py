"""Streaming benchmark: how much delay chatsite adds to each word of a reply, at 1 to N concurrent chats.

What it starts (all on 127.0.0.1, all stopped at the end, on Ctrl+C and on errors):

* a copy of the app in a temporary directory (the working tree, or `git archive <commit>` with
  --source <commit>), migrated, with collected static files and --streams user accounts, served by
  the Procfile's command `gunicorn chatsite.wsgi --config gunicorn.conf.py` (gthread, 1 worker,
  160 threads by default) with DEBUG=0 and a fresh SQLite database. The copy keeps the run away
  from var/ and .env, and from edits made to the tree while it runs.
* bench/fake_upstream.py in its own process: an OpenAI-compatible upstream whose words are
  `ts<µs since the epoch>`, the moment each word was written to the socket (--words words,
  --interval-ms apart; --framing chunked or close-delimited body).

The load client (this process) is one asyncio event loop on raw sockets: HTTP/1.1 written and
parsed here, each received block stamped with time.time_ns() in `data_received`, and all
parsing of the streams done after the run, so the client stays cheap while it measures. Each
simulated user has its own account, signs in through the login form (cookie + CSRF token),
loads the chat page, then, at the same moment as every other user, does what the page does:
`POST /c/` as htmx would (HX-Request, X-CSRFToken, the composer's fields with a fresh
client_id), then `GET` the `data-stream-url` of the pending reply as EventSource would, until
the `done` event.

Reported per run (and for all runs together):
* relay delay per word: arrival at the client minus the emit time written in the word; also
  for the words emitted once every POST of the run was answered (streaming only, no new
  conversations being created);
* first word: the same for the first word of each reply (what the app adds to the time to
  first token), and the time to first token counted from the submit, and the POST's duration;
* streams completed, errors (HTTP errors, timeouts, a stream without `done`, event ids that
  are not the text length, streamed text that differs from what the upstream sent), and the
  replies in the database after the run that are `complete` with exactly the text the upstream
  sent (the others are counted as truncated or lost);
* the send's server time: the POST's `Server-Timing` (the app is served with
  CHAT_SERVER_TIMING=1), `app` minus `queue`, i.e. the wall time from gunicorn handing the
  request to Django's first middleware until the response left the last one, less the time it
  waited for its turn in the fair queue (common.fairness); its `cpu` (the thread's CPU time
  over the same span, waiting included, which costs none) and the `queue` wait itself. Code
  that sends no such header (an older --source) is reported as "not available";
* the burst's fairness. The server's order of the sends is their turn in the fair queue (the
  header's `queue` description; for older code, the order in which the POSTs were answered).
  Of every pair of sends of a run, one earlier and one later in that order, the pair is out of
  order when the later one's first word reached its client more than 50 ms before the earlier
  one's; reported as the share of such pairs. "First word after its own POST answered" is the
  arrival of a reply's first word minus the end of its own POST's response: what a person
  waits once the send is answered, whatever the queue ahead was;
* with --non-streamed (CHAT_STREAMING=0, the upstream answers a whole chat.completion whose
  words all carry the stamp of the moment it was written, after waiting as long as a streamed
  reply would): the non-streamed turn added, the arrival at the client of the reply's text
  (the page's stream delivers it whole, in one event) minus that stamp;
* CPU use of gunicorn, the fake upstream, the client and of other processes on the machine,
  the client's event-loop lag and the upstream's emit lateness, to show which process was the
  limit. Before each run the bench waits for other processes to be quiet, and a run during
  which they were not is measured again (--quiet-percent, --redo-noisy).

    .venv/bin/python bench/stream_bench.py --streams 100 --runs 3
    .venv/bin/python bench/stream_bench.py --streams 1 --runs 5 --framing close
    .venv/bin/python bench/stream_bench.py --streams 1 --words 200 --runs 5 --non-streamed
    .venv/bin/python bench/stream_bench.py --streams 100 --words 600 --ramp-ms 10000 --samples words.csv

Percentiles are nearest-rank over all samples (all words of all streams). --samples writes
every word's emit and arrival time, for a closer look. The exit status is 1 when any stream
failed or any reply was not saved complete.
"""

import argparse
import asyncio
import json
import os
import secrets
import sys
from pathlib import Path

from harness import BENCH, HOST, PYTHON
from harness.app import app_environment, prepare_app, prepare_database, serve, source_description
from harness.client import wait_until_up
from harness.options import add_app_options
from harness.processes import Processes, free_port, process_tree, rss_mb, run_bench, wait_for_quiet
from harness.relay import one_run
from harness.report import RunResult, print_summary
from harness.users import User, sign_in_all


async def bench(args, tmp: Path, processes: Processes) -> list[dict]:
    app = prepare_app(tmp, args.source)
    app_port, upstream_port = free_port(), free_port()
    # Server-Timing gives the send's own time and its turn in the fair queue (common.timing).
    chosen = {"CHAT_SERVER_TIMING": "1", "CHAT_STREAMING": "0" if args.non_streamed else "1"}
    env = app_environment(args, tmp, app_port, upstream_port, chosen)
    password = secrets.token_urlsafe(16)
    print(f"Preparing the app ({source_description(args.source)}) in {app} ...", flush=True)
    prepare_database(app, env, args.streams, password)

    upstream_command = [str(PYTHON), str(BENCH / "fake_upstream.py"), "--port", str(upstream_port)]
    upstream_command += ["--words", str(args.words), "--interval-ms", str(args.interval_ms)]
    upstream_command += ["--first-token-ms", str(args.first_token_ms), "--framing", args.framing]
    upstream = processes.start("upstream", upstream_command, cwd=BENCH, env=os.environ.copy(), log=tmp / "upstream.log")
    await wait_until_up(upstream_port, "/__stats", upstream, tmp / "upstream.log")

    server = await serve(processes, "gunicorn", app, env, tmp / "gunicorn.log")
    print(
        f"gunicorn (pid {server.pid}) on {HOST}:{app_port}; fake upstream (pid {upstream.pid}, {args.framing}) "
        f"on {HOST}:{upstream_port}: {args.words} words, {args.interval_ms:g} ms apart, "
        f"first after {args.first_token_ms:g} ms" + (" (whole replies, CHAT_STREAMING=0)" if args.non_streamed else ""),
        flush=True,
    )

    users = [User(i, app_port, password) for i in range(args.streams)]
    await sign_in_all(users, args.login_concurrency)
    for user in users:
        user.follow_up = args.follow_up

    pids = {"gunicorn": server.pid, "upstream": upstream.pid}
    if args.warmup or args.follow_up:
        # With --follow-up every user starts the conversation the timed runs continue.
        starting = users if args.follow_up else users[:1]
        warm = await one_run(args, 0, starting, pids, upstream_port, tmp / "db.sqlite3")
        if warm.errors or warm.completed != len(starting):
            raise RuntimeError(f"the warm-up conversation failed: {warm.errors}")
    summaries = []
    print(f"\n{args.streams} concurrent stream(s), {args.framing} upstream body, {args.runs} run(s):", flush=True)
    samples = [] if args.samples else None
    results = []
    for run in range(1, args.runs + 1):
        for attempt in range(args.redo_noisy + 1):
            await wait_for_quiet(args.quiet_percent, args.quiet_wait, pids)
            run_samples = [] if samples is not None else None
            result = await one_run(args, run, users, pids, upstream_port, tmp / "db.sqlite3", run_samples)
            await asyncio.sleep(args.pause)
            # The workers only (not the master), once the run's replies are saved and titled.
            result.idle_rss_mb = rss_mb(process_tree(server.pid)[1:])
            summary = result.summary()
            print_summary(summary)
            others = summary["cpu_percent"]["other processes"]
            if others <= args.quiet_percent or attempt == args.redo_noisy:
                break
            print(f"    (other processes used {others:.0f}% of a core during run {run}: discarded, measuring again)")
        summary["noisy"] = summary["cpu_percent"]["other processes"] > args.quiet_percent
        results.append(result)
        summaries.append(summary)
        if samples is not None:
            samples += run_samples
    if len(results) > 1:
        overall = RunResult.combine(results).summary()
        overall["noisy"] = any(s["noisy"] for s in summaries)
        print("  all runs together:")
        print_summary(overall)
        summaries.append(overall)
    if samples is not None:
        with open(args.samples, "w") as out:
            out.write("run,user,word,emit_us,arrival_us,relay_ms,submit_us,posted_us\n")
            for run, user, word, emit, arrival, submit, posted in samples:
                out.write(f"{run},{user},{word},{emit},{arrival},{(arrival - emit) / 1000:.3f},{submit},{posted}\n")
    if server.poll() is not None:
        raise RuntimeError(f"gunicorn exited during the run:\n{(tmp / 'gunicorn.log').read_text()[-3000:]}")
    return summaries


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--streams", type=int, default=1, help="concurrent conversations, one user each (default 1)")
    parser.add_argument("--words", type=int, default=40, help="words per reply (default 40)")
    parser.add_argument("--interval-ms", type=float, default=20.0, help="time between words (default 20)")
    parser.add_argument(
        "--first-token-ms", type=float, default=0.0, help="upstream delay before the first word (default 0)"
    )
    parser.add_argument(
        "--framing",
        choices=["chunked", "close"],
        default="chunked",
        help="upstream body: chunked transfer encoding, or close-delimited (default chunked)",
    )
    parser.add_argument(
        "--non-streamed",
        action="store_true",
        help="serve the app with CHAT_STREAMING=0: the upstream answers each reply whole (a chat.completion)",
    )
    parser.add_argument("--runs", type=int, default=1, help="timed runs against the same server (default 1)")
    parser.add_argument(
        "--follow-up",
        action="store_true",
        help="time messages in a conversation each user started before (POST /c/<id>/messages/), not new chats",
    )
    parser.add_argument("--ramp-ms", type=float, default=0.0, help="spread the submits over this long (default 0)")
    parser.add_argument(
        "--source",
        default="worktree",
        help="the code to serve: the working tree (default) or a commit, e.g. HEAD (via git archive)",
    )
    parser.add_argument("--login-concurrency", type=int, default=4, help="sign-ins at once before the runs")
    parser.add_argument("--timeout", type=float, default=0.0, help="per conversation (default: reply length + 60 s)")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between runs")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false", help="skip the untimed first conversation")
    parser.add_argument("--samples", type=Path, help="write every word's emit and arrival time to this CSV file")
    parser.add_argument(
        "--redo-noisy",
        type=int,
        default=2,
        help="measure a run again when other processes used more than --quiet-percent during it (default 2)",
    )
    add_app_options(parser, each="run", writes="the summaries")
    args = parser.parse_args(argv)
    if args.streams < 1 or args.words < 1 or args.runs < 1:
        parser.error("--streams, --words and --runs must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    summaries = run_bench(bench, args, prefix="chatsite-bench-", kept="gunicorn.log, upstream.log, db.sqlite3")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "runs": summaries}))
    failed = any(
        s["errors"] or s["completed"] != s["streams"] or s["database"]["complete_full"] != s["streams"]
        for s in summaries
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
