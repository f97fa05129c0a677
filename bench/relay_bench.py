"""What a relayed word costs in CPU, in one process: the real send, generation and stream, no gunicorn.

One process runs the app in-process (Django's test client, a migrated SQLite file in a temporary
directory): it posts a new chat (`POST /c/`, which starts the reply in the generation pool), then
follows the reply's stream (`GET …/stream/?offset=0`) on the main thread, and writes every chunk
of the response to a socket, framed as gunicorn's chunked writes are (`%X\\r\\n…\\r\\n`). So each
word goes the whole per-word path on two real threads: the generation thread reads the upstream
(`CompletionStream`: `_blocks` → `Parser.feed` → `_read_chunk`) and hands the piece over
(`Live.append`), the follower wakes (`follow`) and encodes the event (`events`, `Holding`,
`StreamingHttpResponse`). The saver thread's rounds during the stream are in the figure too.

The upstream is `bench/fake_upstream.py` in its own process, and the socket's other end is drained
by `cat` in another, so neither is counted. CPU is `time.process_time()` of this process:

- **per word**: from the follower's first text event to its last, divided by the words between
  them (one word per event at these intervals; the bench checks that it was so);
- **per turn**: from before the POST until the reply is saved, titled and gone from the pool.

Both are also given by thread: `request` (the main thread: the send, then the stream, as a
gunicorn thread serves them one after the other), `generation` (the pool's) and `stream-saver`.

    .venv/bin/python bench/relay_bench.py --words 200 --interval-ms 20 --runs 5
    .venv/bin/python bench/relay_bench.py --words 1000 --interval-ms 5 --runs 3
    .venv/bin/python bench/relay_bench.py --one-thread --words 2000 --runs 9

`--one-thread` measures the same per-word Python (the upstream's events parsed, `Live.append`,
`follow`, `events`, `Holding`) on one thread, each word taken by the stream as soon as it is
appended: no thread waits, so what it reports is the code's own cost, without the wake-ups
(on this VM a thread's wake-up costs 15 to 35 µs of CPU, more than all of that code).

It prints one line per run and the medians. The exit status is 1 if a reply was not saved
complete with the upstream's text or the client did not receive exactly that text.
"""

import argparse
import json
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def start_upstream(words: int, interval_ms: float) -> tuple[subprocess.Popen, int]:
    upstream = subprocess.Popen(  # noqa: S603 (our own script)
        [
            sys.executable,
            str(ROOT / "bench" / "fake_upstream.py"),
            "--words",
            str(words),
            "--interval-ms",
            str(interval_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = upstream.stdout.readline()
    if not line.startswith("READY "):
        raise RuntimeError(f"the fake upstream did not start: {line!r}")
    return upstream, int(line.split()[1])


def configure(tmp: Path, upstream_port: int) -> None:
    (tmp / "empty.env").write_text("")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="chatsite.settings",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        CHATSITE_ENV_FILE=str(tmp / "empty.env"),
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        AIMLAPI_BASE_URL=f"http://127.0.0.1:{upstream_port}/v1",
        AIMLAPI_API_KEY="bench-fake-key-not-a-real-one",
        AIMLAPI_MODEL="bench/fake",
        ALLOWED_HOSTS="testserver",
        HTTPS="0",
    )
    for name in ("REDIS_URL", "CHAT_BUS_REDIS_URL", "CACHE_URL"):
        os.environ.pop(name, None)
    import django

    warnings.filterwarnings("ignore", message="No directory at")  # no collectstatic: no page loads them

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def cpu_times() -> dict[str, float]:
    """CPU seconds of the whole process and of each of its threads by kind, now."""
    times = {"process": time.process_time()}
    for thread in threading.enumerate():
        kind = "request" if thread.name == "MainThread" else thread.name.rstrip("0123456789_").removeprefix("chatsite-")
        try:
            used = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        except (OSError, TypeError):  # the thread ended meanwhile
            continue
        times[kind] = times.get(kind, 0) + used
    return times


def one_turn(client, sink: socket.socket, words: int) -> dict:
    """A new chat's turn, its stream written to `sink`; the CPU figures and whether it all arrived."""
    from common import sse
    from conversations.generation import live
    from conversations.models import Message

    turn_started = cpu_times()
    response = client.post(
        "/c/", {"content": f"bench {uuid.uuid4()}", "client_id": str(uuid.uuid4())}, headers={"HX-Request": "true"}
    )
    if response.status_code != 200:
        raise RuntimeError(f"POST /c/ answered {response.status_code}")
    stream_url = re.findall(r'data-stream-url="([^"]+)"', response.content.decode())[-1]
    stream = client.get(stream_url + "?offset=0")
    chunks = []  # (CPU times when written, chunk): parsed after the stream, so the parse is not counted
    for chunk in stream:  # as gunicorn iterates the response, one chunked write per item
        sink.sendall(b"%X\r\n%s\r\n" % (len(chunk), chunk))
        chunks.append((cpu_times(), chunk))
    stream.close()
    while live.running:  # saved and titled
        time.sleep(0.001)
    turn_ended = cpu_times()
    turn_threads = {name: (used - turn_started.get(name, 0)) * 1000 for name, used in turn_ended.items()}
    parser = sse.Parser()
    received, times = [], []
    for written, chunk in chunks:
        for event in parser.feed(chunk):
            if event.event == "text":
                received.append(json.loads(event.data))
                times.append(written)
    first, last, texts = times[0], times[-1], len(times)
    words_between = max(1, texts - 1)
    per_thread = {name: (last.get(name, 0) - first.get(name, 0)) / words_between * 1e6 for name in last}
    reply = Message.objects.filter(role="assistant").latest("pk")
    text = "".join(received)
    return {
        "us_per_word": per_thread.pop("process"),
        "threads": per_thread,
        "turn_ms": turn_threads.pop("process"),
        "turn_threads": turn_threads,
        "events": texts,
        "ok": reply.status == "complete" and reply.content == text and len(text.split()) == words,
    }


class _Body:
    """An upstream body already read: one server-sent event per read, as the socket gives them."""

    def __init__(self, events: list[bytes]):
        self._events = iter(events)

    def read1(self, size: int) -> bytes:
        return next(self._events, b"")


def one_thread(client, words: int) -> float:
    """The per-word Python of the relay without any wake-up: the upstream's events parsed
    (`CompletionStream`), handed to the reply (`Live.append`) and taken at once by the stream
    (`follow`, `events`, `Holding`, `StreamingHttpResponse`), all on this thread; µs of CPU per word."""
    from types import SimpleNamespace

    from conversations.generation import live, relay
    from conversations.models import Conversation, Message
    from providers.upstream import UpstreamConfig
    from providers.upstream.stream import CompletionStream

    owner = client.session["_auth_user_id"]
    conversation = Conversation.objects.create(owner_id=owner, model="bench/fake")
    reply = Message.objects.create(conversation=conversation, role="assistant", status="streaming")
    prefix = b'data: {"id": "gen-1", "model": "bench/fake", "choices": [{"index": 0, "delta": {"content": "'
    body = [prefix + b'ts%d "}, "finish_reason": null}]}\n\n' % word for word in range(words)]
    response = SimpleNamespace(
        headers={"Content-Type": "text/event-stream"}, raw=SimpleNamespace(_fp=_Body([*body, b"data: [DONE]\n\n"]))
    )
    stream = CompletionStream(response, config=UpstreamConfig.from_settings(), model="bench/fake")
    # The code before this bench decided per piece whether there is a bus (`Publisher` always).
    reply_live = live.Live(bus=getattr(relay, "publisher", relay.Publisher)(reply.pk))
    live.running[reply.pk] = reply_live
    try:
        chunks = iter(client.get(f"/c/{conversation.pk}/messages/{reply.pk}/stream/?offset=0"))
        next(chunks)  # retry:
        started = time.process_time()
        for piece in stream:
            reply_live.append(piece)
            next(chunks)
        used = time.process_time() - started
    finally:
        reply_live.finished = True
        live.running.pop(reply.pk)
    return used / words * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=200)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1, help="turns run first and not counted")
    parser.add_argument(
        "--one-thread", action="store_true", help="the per-word Python alone, on one thread, without wake-ups"
    )
    args = parser.parse_args()

    upstream, port = start_upstream(args.words, args.interval_ms)
    ours, theirs = socket.socketpair()
    drain = subprocess.Popen(["cat"], stdin=theirs, stdout=subprocess.DEVNULL)  # noqa: S607 (the reader)
    theirs.close()
    try:
        with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp:
            configure(Path(tmp), port)
            from django.contrib.auth import get_user_model
            from django.test import Client

            client = Client()
            client.force_login(get_user_model().objects.create_user(username="bench"))
            if args.one_thread:
                costs = [one_thread(client, args.words) for _ in range(args.warmup + args.runs)][args.warmup :]
                print(
                    f"one thread, {args.words} words: {statistics.median(costs):.2f} µs CPU per word "
                    f"(median of {len(costs)}; least {min(costs):.2f}; load average {os.getloadavg()[0]:.2f})"
                )
                return 0
            results = []
            for run in range(args.warmup + args.runs):
                result = one_turn(client, ours, args.words)
                if run >= args.warmup:
                    results.append(result)
                    print(
                        f"run {len(results)}: {result['us_per_word']:.1f} µs CPU per word, "
                        f"{result['turn_ms']:.1f} ms CPU per turn, {result['events']} text events, "
                        f"{'ok' if result['ok'] else 'NOT SAVED/RECEIVED COMPLETE'}; per word by thread: "
                        + ", ".join(f"{name} {us:.1f}" for name, us in sorted(result["threads"].items()))
                    )
    finally:
        ours.close()
        drain.wait(timeout=10)
        upstream.terminate()
        upstream.wait(timeout=10)
    per_word = statistics.median(r["us_per_word"] for r in results)
    per_turn = statistics.median(r["turn_ms"] for r in results)
    threads = {name: statistics.median(r["threads"].get(name, 0) for r in results) for name in results[0]["threads"]}
    turn_threads = {
        name: statistics.median(r["turn_threads"].get(name, 0) for r in results) for name in results[0]["turn_threads"]
    }
    least = min(r["us_per_word"] for r in results), min(r["turn_ms"] for r in results)
    print(
        f"median of {len(results)}: {per_word:.1f} µs CPU per word, {per_turn:.1f} ms CPU per turn "
        f"({args.words} words, {args.interval_ms:g} ms apart; load average {os.getloadavg()[0]:.2f})\n"
        "  per word by thread (µs): " + ", ".join(f"{name} {us:.1f}" for name, us in sorted(threads.items())) + "\n"
        "  per turn by thread (ms): "
        + ", ".join(f"{name} {ms:.1f}" for name, ms in sorted(turn_threads.items()))
        + "\n"
        f"  least of {len(results)}: {least[0]:.1f} µs CPU per word, {least[1]:.1f} ms CPU per turn"
    )
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
