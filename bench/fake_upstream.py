"""A timestamping OpenAI-compatible upstream for bench/stream_bench.py (standard library and common/sse.py, asyncio).

`POST /v1/chat/completions` with `"stream": true` answers with server-sent events whose words
are `ts<microseconds since the epoch> `: the time (time.time_ns) at which that word's bytes were
handed to the socket. A client on the same machine subtracts it from its own arrival time to get
the delay added between the upstream and itself.

Each reply has --words words, --interval-ms apart on a fixed schedule (no drift), the first one
--first-token-ms after the request was read. Sockets have TCP_NODELAY and every event is written
on its own at once (asyncio writes straight to the socket when its buffer is empty).

--framing decides how the body is delimited:
  chunked  HTTP/1.1 `Transfer-Encoding: chunked`, one chunk per event; the connection is kept alive.
  close    no Content-Length and no chunking, `Connection: close`: the body ends when the
           connection closes (HTTP/1.0 style).

With `"stream": false` it answers one chat.completion JSON (usage included) once a streamed
reply would have ended (--first-token-ms, then --words times --interval-ms): --words words, all the
same `ts<µs>` stamp, taken as the body is written.

`GET /__stats` returns JSON: for every reply, the last user message (the bench puts a
unique tag there) with the exact text sent, and the lateness of each emit against its schedule.

Run alone: `python bench/fake_upstream.py --port 8001`. It prints `READY <port>` once listening.
"""

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import sys
import time
import uuid
from pathlib import Path

# Run as a script from bench/: the project's packages are one level up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common.sse import format_event

WORD_PLACEHOLDER = "@@word@@"  # what json.dumps writes as it is
STATS: dict = {"requests": 0, "replies": {}, "emit_late_us": [], "closed_us": {}}


def _event_prefix(response_id: str, created: int, model: str) -> tuple[bytes, bytes]:
    """The bytes of a content chunk around its content: prefix + word + suffix.

    Formatted once per reply around a placeholder, so each word costs one concatenation.
    """
    base = {"id": response_id, "object": "chat.completion.chunk", "created": created, "model": model}
    chunk = {**base, "choices": [{"index": 0, "delta": {"content": WORD_PLACEHOLDER}, "finish_reason": None}]}
    prefix, suffix = format_event(json.dumps(chunk)).encode().split(WORD_PLACEHOLDER.encode())
    return prefix, suffix


def _final_events(response_id: str, created: int, model: str, words: int) -> list[bytes]:
    base = {"id": response_id, "object": "chat.completion.chunk", "created": created, "model": model}
    finish = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    usage = {
        **base,
        "choices": [],
        "usage": {"prompt_tokens": 9, "completion_tokens": words, "total_tokens": 9 + words},
    }
    return [format_event(data).encode() for data in (json.dumps(finish), json.dumps(usage), "[DONE]")]


def _last_user_message(body: dict) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


class Upstream:
    def __init__(self, *, words: int, interval_ms: float, first_token_ms: float, framing: str):
        self.words = words
        self.interval = interval_ms / 1000
        self.first_token = first_token_ms / 1000
        self.framing = framing

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, path, _ = request_line.split(" ", 2)
                headers = {}
                for line in header_lines:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                raw = await reader.readexactly(length) if length else b""
                keep_alive = await self.respond(writer, method, path, raw, reader)
                if not keep_alive or headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return  # the client went away, or this server is stopping
        finally:
            writer.close()

    async def respond(self, writer: asyncio.StreamWriter, method: str, path: str, raw: bytes, reader=None) -> bool:
        """Answer one request; False when the connection must close after it."""
        if method == "GET" and path == "/__stats":
            self._send(writer, 200, json.dumps(STATS).encode())
            return True
        if method == "GET" and path.rstrip("/").endswith("/models"):
            self._send(writer, 200, b'{"object": "list", "data": [{"id": "bench/fake", "object": "model"}]}')
            return True
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            self._send(writer, 404, b'{"error": {"message": "Not found"}}')
            return True
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send(writer, 400, b'{"error": {"message": "Bad JSON"}}')
            return True
        STATS["requests"] += 1
        if not body.get("stream"):
            await self.whole(writer, body)
            return True
        await self.stream(writer, body, reader)
        return self.framing == "chunked"

    def _send(self, writer: asyncio.StreamWriter, status: int, payload: bytes) -> None:
        head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        writer.write(head.encode() + payload)

    async def whole(self, writer: asyncio.StreamWriter, body: dict) -> None:
        """`"stream": false`: the whole reply once a streamed one would have ended, every word the write's stamp."""
        loop = asyncio.get_running_loop()
        due = loop.time() + self.first_token + self.words * self.interval
        await asyncio.sleep(max(0.0, due - loop.time()))
        STATS["emit_late_us"].append(round((loop.time() - due) * 1e6))
        model = str(body.get("model") or "bench/fake")
        # The payload is formatted around the placeholder beforehand, so the stamp is taken as
        # late as possible: just before the bytes go to the socket.
        reply = {
            "id": f"gen-bench-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": WORD_PLACEHOLDER}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 9, "completion_tokens": self.words, "total_tokens": 9 + self.words},
        }
        prefix, suffix = json.dumps(reply).encode().split(WORD_PLACEHOLDER.encode())
        word = b"ts%d " % (time.time_ns() // 1000)
        self._send(writer, 200, prefix + word * self.words + suffix)
        STATS["replies"][_last_user_message(body)] = (word * self.words).decode()
        await writer.drain()

    async def stream(self, writer: asyncio.StreamWriter, body: dict, reader=None) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        tag = _last_user_message(body)
        # The client sends nothing while it reads a stream: a read that ends is the client
        # closing the connection (Stop), stamped at once in closed_us.
        closed = asyncio.ensure_future(reader.read(1)) if reader is not None else None
        if closed is not None:
            closed.add_done_callback(
                lambda done: done.cancelled() or STATS["closed_us"].setdefault(tag, time.time_ns() // 1000)
            )
        model = str(body.get("model") or "bench/fake")
        response_id, created = f"gen-bench-{uuid.uuid4().hex[:12]}", int(time.time())
        prefix, suffix = _event_prefix(response_id, created, model)
        chunked = self.framing == "chunked"
        if chunked:
            head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            head += "Transfer-Encoding: chunked\r\n\r\n"
        else:
            head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            head += "Connection: close\r\n\r\n"
        writer.write(head.encode())

        def frame(payload: bytes) -> bytes:
            return b"%X\r\n%s\r\n" % (len(payload), payload) if chunked else payload

        sent = []
        late = STATS["emit_late_us"]
        for i in range(self.words):
            due = start + self.first_token + i * self.interval
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            late.append(round((loop.time() - due) * 1e6))
            now_us = time.time_ns() // 1000
            word = b"ts%d " % now_us
            writer.write(frame(prefix + word + suffix))
            sent.append(word.decode())
            if writer.transport.is_closing() or (closed is not None and closed.done()):
                break
        if closed is not None:
            # Before the end is written, so the client's next request is not read here; awaited,
            # so the read is gone before the next request's (two reads at once would raise).
            closed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await closed
        for event in _final_events(response_id, created, model, self.words):
            writer.write(frame(event))
        if chunked:
            writer.write(b"0\r\n\r\n")
        STATS["replies"][tag] = "".join(sent)
        await writer.drain()


async def serve(args: argparse.Namespace) -> None:
    upstream = Upstream(
        words=args.words, interval_ms=args.interval_ms, first_token_ms=args.first_token_ms, framing=args.framing
    )
    server = await asyncio.start_server(upstream.handle, args.host, args.port, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed as READY <port>)")
    parser.add_argument("--words", type=int, default=40)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    parser.add_argument("--first-token-ms", type=float, default=0.0)
    parser.add_argument("--framing", choices=["chunked", "close"], default="chunked")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
