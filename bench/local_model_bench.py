"""Local model benchmark: what chatsite adds to a real model's time to first token and tokens per second.

What it starts (all on 127.0.0.1, all stopped at the end, on Ctrl+C and on errors):

* the local model server of `make run-local` (scripts/run_local.py's ModelServer): llama-cpp-python's
  OpenAI-compatible server with SmolLM2-135M-Instruct, from requirements-local.txt;
* a copy of the app, migrated and served by the Procfile's command (gunicorn with gunicorn.conf.py),
  pointed at that server, prepared by bench/harness exactly as for bench/stream_bench.py.

Then the same prompts, at temperature 0 (greedy: both paths get the same text) and at most
--max-tokens tokens, go both ways, --reps times each, one request at a time (the server generates
one reply at a time anyway):

* direct: `POST /v1/chat/completions` with `"stream": true` to the model server, the body chatsite
  sends; the time to first token is the arrival of the first content delta minus the request's send;
* chatsite: as a browser drives it (the harness's client, signed in through the login form):
  `POST /c/` as htmx sends the composer (with the chat settings max tokens and temperature), then
  `GET` the reply's stream URL as EventSource does; the time to first token is the arrival of the
  first `text` event minus the POST's send.

Tokens per second is the reply's tokens (counted by the server's tokenizer on the final text, the
same way for both paths) over the time from the first to the last piece of text. Within each
repetition the order of the two paths alternates, and consecutive requests never repeat a prompt,
so llama.cpp's prompt cache helps both paths alike. The figure is the ratio chatsite / direct.

    .venv/bin/python bench/local_model_bench.py
    .venv/bin/python bench/local_model_bench.py --reps 10 --max-tokens 128 --json local.json

Percentiles are nearest-rank. The exit status is 1 when a reply failed, was not saved complete
with the text streamed to the client, or a path got no text.
"""

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from harness import HOST
from harness.app import app_environment, prepare_app, prepare_database, saved_messages, serve, source_description
from harness.client import HttpConnection, fetch_json
from harness.options import add_app_options
from harness.processes import Processes, bench_run, free_port, wait_for_quiet
from harness.report import percentile
from harness.users import STREAM_URL, User

from scripts.run_local import MODEL_ALIAS, LocalModelUnavailable, ModelServer, model_file

PROMPTS = [
    "What is the capital of France?",
    "Write a short poem about the sea.",
    "Explain in a few sentences why the sky is blue.",
    "Give me three tips for learning to cook.",
]
WARM_UP_PROMPT = "Say hello."


@dataclass
class Sample:
    path: str  # "direct" or "chatsite"
    prompt: int
    rep: int
    text: str = ""
    ttft_ms: float = float("nan")
    decode_s: float = 0.0  # first to last piece of text
    total_ms: float = float("nan")  # send to last piece of text
    pieces: int = 0
    tokens: int = 0
    message_id: int = 0
    # chatsite only: the time to first token that chatsite itself measured and stored with the
    # reply. It counts from the model server's response headers, not from the request.
    upstream_ttft_ms: float = float("nan")
    error: str = ""

    @property
    def tokens_per_s(self) -> float:
        # The first token is the time to first token; the rest are decoded in decode_s.
        return (self.tokens - 1) / self.decode_s if self.tokens > 1 and self.decode_s > 0 else float("nan")


def request_body(prompt: str, max_tokens: int) -> dict:
    """What chatsite sends for a new chat with these settings (providers/upstream.py)."""
    return {
        "model": MODEL_ALIAS,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def timings(sample: Sample, sent_ns: int, pieces: list[tuple[int, str]]) -> None:
    pieces = [(now, text) for now, text in pieces if text]
    if not pieces:
        sample.error = sample.error or "no text arrived"
        return
    sample.text = "".join(text for _, text in pieces)
    sample.pieces = len(pieces)
    sample.ttft_ms = (pieces[0][0] - sent_ns) / 1e6
    sample.total_ms = (pieces[-1][0] - sent_ns) / 1e6
    sample.decode_s = (pieces[-1][0] - pieces[0][0]) / 1e9


async def direct(server: ModelServer, sample: Sample, prompt: str, max_tokens: int) -> None:
    conn = await HttpConnection.open(HOST, server.port)
    try:
        body = json.dumps(request_body(prompt, max_tokens)).encode()
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream", "Authorization": "Bearer x"}
        sent = time.time_ns()
        response = await conn.request("POST", "/v1/chat/completions", headers, body)
    finally:
        conn.close()
    if response.status != 200:
        sample.error = f"the model server answered {response.status}"
        return
    pieces = []
    for now, event in response.events():
        if event.data != "[DONE]":
            for choice in json.loads(event.data).get("choices") or []:
                pieces.append((now, (choice.get("delta") or {}).get("content") or ""))
    timings(sample, sent, pieces)


async def through_chatsite(user: User, sample: Sample, prompt: str, max_tokens: int) -> None:
    conn = await HttpConnection.open(HOST, user.port)
    try:
        form = {**user.fields, "client_id": str(uuid.uuid4()), "content": prompt}
        form.update({"settings-max_tokens": str(max_tokens), "settings-temperature": "0"})
        headers = user.composer_headers()
        sent = time.time_ns()
        posted = await conn.request("POST", "/c/", headers, urlencode(form).encode())
        match = STREAM_URL.search(posted.body().decode("utf-8", "replace"))
        if posted.status != 200 or not match:
            sample.error = f"POST /c/ answered {posted.status} without a stream URL"
            return
        sample.message_id = int(match.group(2))
        if conn.closed:
            conn = await HttpConnection.open(HOST, user.port)
        headers = user.event_source_headers()
        stream = await conn.request("GET", match.group(1) + "?offset=0", headers)
    finally:
        conn.close()
    if stream.status != 200:
        sample.error = f"the stream answered {stream.status}"
        return
    found = stream.events()
    if not found or found[-1][1].event != "done":
        sample.error = "the stream ended without a done event"
    timings(sample, sent, [(now, json.loads(event.data)) for now, event in found if event.event == "text"])


async def count_tokens(server: ModelServer, text: str) -> int:
    return len((await fetch_json(server.port, "/extras/tokenize", {"model": MODEL_ALIAS, "input": text}))["tokens"])


def check_saved(db: Path, samples: list[Sample]) -> None:
    """A chatsite reply counts only if it was saved complete with exactly the text the client got."""
    checked = [sample for sample in samples if sample.path == "chatsite" and not sample.error]
    rows = saved_messages(db, [sample.message_id for sample in checked], "status", "content", "first_token_ms")
    for sample in checked:
        row = rows.get(sample.message_id)
        if row is None or row[0] != "complete" or row[1] != sample.text:
            sample.error = f"saved as {row[0] if row else 'nothing'}, not complete with the streamed text"
        elif row[2] is not None:
            sample.upstream_ttft_ms = float(row[2])


def median(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def summarise(samples: list[Sample]) -> dict:
    summary = {}
    for path in ("direct", "chatsite"):
        ok = [s for s in samples if s.path == path and not s.error]
        summary[path] = {
            "replies": len(ok),
            "errors": len([s for s in samples if s.path == path and s.error]),
            "ttft_ms": {"p50": median([s.ttft_ms for s in ok]), "p95": percentile([s.ttft_ms for s in ok], 95)},
            "tokens_per_s": {
                "p50": median([s.tokens_per_s for s in ok]),
                "p5": percentile([s.tokens_per_s for s in ok if s.tokens_per_s == s.tokens_per_s], 5),
            },
            "total_ms_p50": median([s.total_ms for s in ok]),
            "tokens_p50": median([s.tokens for s in ok]),
            "pieces_per_token": sum(s.pieces for s in ok) / max(1, sum(s.tokens for s in ok)),
        }
    # Paired within each request, so the model server's own variation cancels out. An upper
    # bound: it also holds the model server's time to send its response headers.
    own = [s.ttft_ms - s.upstream_ttft_ms for s in samples if s.path == "chatsite" and not s.error]
    own = [value for value in own if value == value]
    summary["chatsite"]["own_ttft_ms"] = {"p50": median(own), "p95": percentile(own, 95)}
    direct, chatsite = summary["direct"], summary["chatsite"]
    summary["ratio"] = {
        "ttft": chatsite["ttft_ms"]["p50"] / direct["ttft_ms"]["p50"],
        "ttft_added_ms": chatsite["ttft_ms"]["p50"] - direct["ttft_ms"]["p50"],
        "tokens_per_s": chatsite["tokens_per_s"]["p50"] / direct["tokens_per_s"]["p50"],
    }
    texts = {}
    for s in samples:
        if not s.error:
            texts.setdefault(s.prompt, set()).add(s.text)
    summary["prompts_with_one_text"] = sum(len(found) == 1 for found in texts.values())
    return summary


def print_table(samples: list[Sample], summary: dict) -> None:
    print("\nper prompt (medians): tokens | TTFT direct / chatsite ms | tokens/s direct / chatsite")
    for index, prompt in enumerate(PROMPTS):
        direct_ok, chatsite_ok = (
            [s for s in samples if s.prompt == index and s.path == path and not s.error]
            for path in ("direct", "chatsite")
        )
        if not direct_ok or not chatsite_ok:
            continue
        ttft = [median([s.ttft_ms for s in found]) for found in (direct_ok, chatsite_ok)]
        rate = [median([s.tokens_per_s for s in found]) for found in (direct_ok, chatsite_ok)]
        tokens = median([s.tokens for s in direct_ok])
        print(f"  {prompt[:44]:<44} {tokens:>5.0f} | {ttft[0]:6.1f} / {ttft[1]:6.1f} | {rate[0]:6.1f} / {rate[1]:6.1f}")
    for path in ("direct", "chatsite"):
        s = summary[path]
        print(
            f"{path:>8}: {s['replies']} replies, {s['errors']} errors; time to first token median "
            f"{s['ttft_ms']['p50']:.1f} ms, p95 {s['ttft_ms']['p95']:.1f} ms; tokens/s median "
            f"{s['tokens_per_s']['p50']:.1f}, p5 {s['tokens_per_s']['p5']:.1f}; "
            f"last token after {s['total_ms_p50']:.0f} ms (median); {s['pieces_per_token']:.2f} pieces per token"
        )
    own = summary["chatsite"]["own_ttft_ms"]
    print(
        f"chatsite's own share of its time to first token, at most (the client's, minus the one chatsite "
        f"measured from the model server's headers in the same request): median {own['p50']:.1f} ms, "
        f"p95 {own['p95']:.1f} ms"
    )
    r = summary["ratio"]
    print(
        f"   ratio: chatsite / direct: time to first token x{r['ttft']:.2f} (+{r['ttft_added_ms']:.1f} ms), "
        f"tokens per second x{r['tokens_per_s']:.3f}"
    )
    print(f"   prompts whose replies were the same text every time, both ways: {summary['prompts_with_one_text']}")


async def bench(args, tmp: Path, processes: Processes, server: ModelServer) -> tuple[list[Sample], dict]:
    app = prepare_app(tmp, "worktree")
    app_port = free_port()
    env = app_environment(args, tmp, app_port, server.port)
    password = secrets.token_urlsafe(16)
    print(f"Preparing the app ({source_description('worktree')}) in {app} ...", flush=True)
    prepare_database(app, env, 1, password)
    gunicorn = await serve(processes, "gunicorn", app, env, tmp / "gunicorn.log")
    user = User(0, app_port, password)
    await user.sign_in()
    print(f"gunicorn (pid {gunicorn.pid}) on {HOST}:{app_port}; model server on {server.base_url}", flush=True)

    # Untimed: loads what the first request of each path loads (with a prompt not measured,
    # which would find itself in llama.cpp's prompt cache).
    for path in ("direct", "chatsite"):
        warm = Sample(path, -1, -1)
        if path == "direct":
            await direct(server, warm, WARM_UP_PROMPT, 8)
        else:
            await through_chatsite(user, warm, WARM_UP_PROMPT, 8)
        if warm.error:
            raise RuntimeError(f"the warm-up reply ({path}) failed: {warm.error}\n{server.log_tail()}")

    pids = {"gunicorn": gunicorn.pid, "upstream": server.process.pid}
    samples = []
    for rep in range(args.reps):
        await wait_for_quiet(args.quiet_percent, args.quiet_wait, pids)
        order = ("direct", "chatsite") if rep % 2 == 0 else ("chatsite", "direct")
        for path in order:
            for index, prompt in enumerate(PROMPTS):
                sample = Sample(path, index, rep)
                if path == "direct":
                    await direct(server, sample, prompt, args.max_tokens)
                else:
                    await through_chatsite(user, sample, prompt, args.max_tokens)
                samples.append(sample)
                # Each request finds the server idle, whichever path came before it.
                await asyncio.sleep(args.pause_ms / 1000)
        print(f"  repetition {rep + 1}/{args.reps} done", flush=True)
    for sample in samples:
        if sample.text:
            sample.tokens = await count_tokens(server, sample.text)
    check_saved(tmp / "db.sqlite3", samples)
    if gunicorn.poll() is not None:
        raise RuntimeError(f"gunicorn exited during the run:\n{(tmp / 'gunicorn.log').read_text()[-3000:]}")
    return samples, summarise(samples)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--reps", type=int, default=5, help="repetitions of every prompt, each way (default 5)")
    parser.add_argument("--max-tokens", type=int, default=128, help="longest reply (default 128)")
    parser.add_argument("--pause-ms", type=float, default=250.0, help="pause between two requests (default 250)")
    parser.add_argument(
        "--threads", type=int, help="generation threads of the model server (default: as `make run-local`)"
    )
    add_app_options(parser, each="repetition", writes="the samples and the summary")
    args = parser.parse_args(argv)
    if args.reps < 1 or args.max_tokens < 2:
        parser.error("--reps must be at least 1 and --max-tokens at least 2")
    # The app asks the model server for the name it answers to.
    args.app_env = [f"AIMLAPI_MODEL={MODEL_ALIAS}", *args.app_env]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        model = model_file()
    except LocalModelUnavailable as error:
        print(error, file=sys.stderr)
        return 2
    kept = "gunicorn.log, llama-server.log, db.sqlite3"
    try:
        with bench_run("chatsite-local-bench-", keep=args.keep, kept=kept) as (tmp, processes):
            server = ModelServer(log=tmp / "llama-server.log", threads=args.threads)
            try:
                server.start()
                print(f"Model server: {model.name} on {server.base_url} (pid {server.process.pid})", flush=True)
                samples, summary = asyncio.run(bench(args, tmp, processes, server))
            finally:
                server.stop()
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    each = f"{args.reps} repetitions each way, at most {args.max_tokens} tokens, temperature 0"
    print(f"\n{len(PROMPTS)} prompts x {each}")
    print_table(samples, summary)
    for sample in samples:
        if sample.error:
            print(f"  error ({sample.path}, prompt {sample.prompt}, repetition {sample.rep}): {sample.error}")
    if args.json:
        data = {"args": {k: str(v) for k, v in vars(args).items()}, "summary": summary}
        data["samples"] = [vars(s) | {"tokens_per_s": s.tokens_per_s} for s in samples]
        args.json.write_text(json.dumps(data, indent=1))
    failed = any(s.error for s in samples) or not all(summary[p]["replies"] for p in ("direct", "chatsite"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
