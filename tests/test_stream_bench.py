"""The stream bench's own figures (bench/harness/sends.py) and its fake upstream's whole replies."""

import asyncio
import importlib.util
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

BENCH = Path(__file__).resolve().parent.parent / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from harness.report import percentile  # noqa: E402
from harness.sends import SendFigures, SendTiming  # noqa: E402

# By its path: tests/ has a fake upstream of its own.
_spec = importlib.util.spec_from_file_location("bench_fake_upstream", BENCH / "fake_upstream.py")
fake_upstream = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_upstream)


def _stats(values, *ps):
    return {f"p{p}": percentile(values, p) for p in ps} | {"max": max(values, default=0)}


def _sent(turn, posted_ms, first_word_ms, header=None):
    """A conversation as the bench sees it: its POST's Server-Timing, its answer, its first word (ms)."""
    header = f'app;dur=10, cpu;dur=4, queue;dur=3;desc="{turn}"' if header is None else header
    words = [(0, first_word_ms * 1000), (0, first_word_ms * 1000 + 20_000)]
    return SimpleNamespace(timing=SendTiming.from_header(header), posted_ns=posted_ms * 1_000_000, words=words)


def test_it_reads_the_sends_server_time_cpu_wait_and_turn():
    timing = SendTiming.from_header('app;dur=12.5, cpu;dur=8.25, queue;dur=2.5;desc="7"')

    assert (timing.server_ms, timing.cpu_ms, timing.queue_ms, timing.turn) == (10.0, 8.25, 2.5, 7)


def test_code_without_the_header_is_not_available_and_ordered_by_the_answers():
    figures = SendFigures.of([_sent(None, 100, 130, header=""), _sent(None, 200, 110, header="")]).summary(_stats)

    assert figures["send_server_ms"] == figures["send_cpu_ms"] == figures["queue_wait_ms"] == "not available"
    assert figures["fairness"]["order"] == "POST answered"
    assert figures["fairness"]["out_of_order_share"] == 0, "110 ms is within 50 ms of 130 ms"


def test_it_counts_the_pairs_whose_first_words_came_more_than_50_ms_out_of_the_servers_order():
    # Turn 2's first word came 100 ms before turn 1's; turn 3's only 20 ms before it.
    sends = [_sent(3, 50, 980), _sent(1, 40, 1000), _sent(2, 60, 900)]

    figures = SendFigures.of(sends).summary(_stats)

    assert figures["fairness"] == {
        "order": "queue turn",
        "pairs": 3,
        "out_of_order_share": round(1 / 3, 4),
        "first_word_after_post_ms": {"p50": 930.0, "max": 960.0},
    }
    assert figures["send_server_ms"]["p50"] == 7.0


def test_runs_combine_their_pairs_not_pairs_across_runs():
    first = SendFigures.of([_sent(1, 1, 500), _sent(2, 1, 100)])
    second = SendFigures.of([_sent(3, 1, 100), _sent(4, 1, 200), _sent(5, 1, 300)])

    combined = SendFigures.combine([first, second])

    assert (combined.pairs, combined.out_of_order) == (1 + 3, 1)


def test_the_fake_upstream_answers_a_whole_reply_stamped_when_written():
    async def ask() -> tuple[float, bytes, bytes]:
        upstream = fake_upstream.Upstream(words=3, interval_ms=20, first_token_ms=40, framing="chunked")
        server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            body = json.dumps({"stream": False, "messages": [{"role": "user", "content": "tag-1"}]}).encode()
            asked = time.time()
            writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            payload = await reader.readexactly(length)
            writer.close()
        return asked, head, payload

    asked, head, payload = asyncio.run(ask())

    reply = json.loads(payload)
    content = reply["choices"][0]["message"]["content"]
    stamp = int(content.split()[0].removeprefix("ts")) / 1e6
    assert head.startswith(b"HTTP/1.1 200")
    assert reply["object"] == "chat.completion" and reply["usage"]["completion_tokens"] == 3
    assert content == content.split()[0] + " " + content.split()[0] + " " + content.split()[0] + " "
    assert stamp - asked >= 0.040 + 3 * 0.020 - 0.002, "written once a streamed reply would have ended"
    assert fake_upstream.STATS["replies"]["tag-1"] == content
