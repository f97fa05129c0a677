"""An OpenAI-compatible chat completions server on 127.0.0.1, for tests and for trying chatsite.

It answers `POST /v1/chat/completions` with the exact response shape of the AI/ML API, streamed
as server-sent events when the request asks for `"stream": true`, and `GET /v1/models` (which
`fail` and `raw` can script too). By
default it echoes the last user message; a test scripts other answers (errors, hangs, malformed
bodies, streams that stall or break) with `reply`, `stream`, `fail`, `raw`, `hang` and `drop`,
one per request, in order. Every request is recorded with its headers, JSON body and arrival
time.

Fault injection (`faults=`, `--faults`): each unscripted request fails at that rate, drawn from
a seeded random generator, with one of the `fault_kinds`: "429" (with Retry-After), "500",
"slow" (the answer starts late) or "drop" (a streamed answer stops mid-way without [DONE]; a
whole answer stops mid-body). `GET /__stats` tells how many requests came and which faults
were injected.

Run alone: `python -m tests.fake_upstream --port 8001`, then start chatsite with
`AIMLAPI_BASE_URL=http://127.0.0.1:8001/v1 AIMLAPI_API_KEY=anything`.
"""

import argparse
import itertools
import json
import random
import re
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common import sse


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict
    json: dict | None
    client_port: int = 0
    at: float = 0.0  # time.monotonic() when the request was read


@dataclass
class Action:
    kind: str  # "reply", "stream", "raw", "hang", "drop"
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    seconds: float = 0.0
    reply: dict | None = None
    pieces: list[str] | None = None
    end: str = "done"  # how a stream ends: "done", "drop" (no [DONE]), "error" (an error chunk), "hang"


FAULT_KINDS = ("429", "500", "slow", "drop")


class FakeUpstream:
    """A scriptable upstream. Start it with `start()`, point AIMLAPI_BASE_URL at `base_url`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        delay: float = 0.0,
        faults: float = 0.0,
        fault_kinds: tuple[str, ...] = FAULT_KINDS,
        seed: int = 0,
        retry_after: int = 1,
        slow_seconds: float = 2.0,
        record: bool = True,
    ):
        self.requests: list[RecordedRequest] = []
        # time.monotonic() of each streamed answer whose client closed the connection mid-way (Stop).
        self.disconnects: list[float] = []
        self.delay = delay  # seconds between the words of an unscripted streamed echo
        self.faults = faults
        self.fault_kinds = fault_kinds
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.record = record
        self.stats: dict = {"requests": 0, "faults": dict.fromkeys(fault_kinds, 0)}
        self._random = random.Random(seed)
        self._script: deque[Action] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "FakeUpstream":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self.disconnects.clear()

    # --- scripting: each call queues the answer to one future request ---------------------
    def reply(
        self, content: str = "Hello from the fake upstream.", *, finish_reason: str = "stop", usage=True, **extra
    ) -> None:
        self._push(Action("reply", reply={"content": content, "finish_reason": finish_reason, "usage": usage, **extra}))

    def stream(
        self,
        pieces: list[str] | str | None = None,
        *,
        delay: float = 0.0,
        end: str = "done",
        hang: float = 0.0,
        finish_reason: str = "stop",
        usage=True,
    ) -> None:
        """A streamed answer: `pieces` (a string is split into words) sent `delay` seconds apart.

        `end` decides how it finishes: "done" (finish_reason, usage, [DONE]), "drop" (the
        connection closes without [DONE]), "error" (an error chunk in the 200 stream), or
        "hang" (nothing more for `hang` seconds, then the connection closes).
        """
        if isinstance(pieces, str):
            pieces = _words(pieces)
        reply = {"finish_reason": finish_reason, "usage": usage}
        self._push(Action("stream", pieces=pieces, seconds=delay, end=end, reply={**reply, "hang": hang}))

    def fail(self, status: int, body: dict | None = None, headers: dict | None = None) -> None:
        body = body if body is not None else {"error": {"message": f"Fake failure {status}", "type": "fake"}}
        self.raw(status, json.dumps(body).encode(), headers=headers)

    def raw(self, status: int, body: bytes, *, content_type: str = "application/json", headers=None) -> None:
        self._push(Action("raw", status=status, body=body, headers={"Content-Type": content_type, **(headers or {})}))

    def hang(self, seconds: float) -> None:
        self._push(Action("hang", seconds=seconds))

    def drop(self) -> None:
        """Close the connection without answering."""
        self._push(Action("drop"))

    def _push(self, action: Action) -> None:
        with self._lock:
            self._script.append(action)

    def _next_scripted(self) -> Action | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def _next(self) -> Action:
        with self._lock:
            self.stats["requests"] += 1
            if self._script:
                return self._script.popleft()
            if self.faults and self._random.random() < self.faults:
                kind = self._random.choice(self.fault_kinds)
                self.stats["faults"][kind] += 1
                return self._fault(kind)
            return Action("reply", reply={}, seconds=self.delay)

    def _fault(self, kind: str) -> Action:
        if kind == "429":
            body = {"message": "Too many requests (injected)", "statusCode": "429"}
            headers = {"Content-Type": "application/json", "Retry-After": str(self.retry_after)}
            return Action("raw", status=429, body=json.dumps(body).encode(), headers=headers)
        if kind == "500":
            body = {"error": {"message": "Injected failure", "type": "fake"}}
            return Action(
                "raw", status=500, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
            )
        if kind == "slow":
            return Action("hang", seconds=self.slow_seconds)
        if kind == "drop":
            return Action("stream", seconds=self.delay, end="drop", reply={"cut": True})
        raise ValueError(f"unknown fault kind {kind!r}")

    def stream_chunks(self, pieces: list[str], spec: dict, model: str) -> list[dict]:
        """The chunk objects of a streamed reply, as the AI/ML API sends them (without [DONE])."""
        response_id, created = f"gen-fake-{next(self._ids)}", int(time.time())

        def chunk(choices, **extra):
            return {
                "id": response_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
                **extra,
            }

        chunks = [
            chunk(
                [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": piece} if i == 0 else {"content": piece},
                        "finish_reason": None,
                    }
                ]
            )
            for i, piece in enumerate(pieces)
        ]
        chunks.append(chunk([{"index": 0, "delta": {}, "finish_reason": spec.get("finish_reason", "stop")}]))
        usage = spec.get("usage", True)
        if usage is True:
            completion_tokens = max(1, len("".join(pieces).split()))
            usage = {"prompt_tokens": 9, "completion_tokens": completion_tokens, "total_tokens": 9 + completion_tokens}
        if usage:
            chunks.append(chunk([], usage=usage))
        return chunks

    @property
    def completion_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def completion_body(self, content: str, finish_reason: str, usage, model: str, **extra) -> dict:
        body = {
            "id": f"gen-fake-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": finish_reason,
                    "logprobs": None,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                }
            ],
        }
        if usage is True:
            prompt_tokens, completion_tokens = 9, max(1, len(content.split()))
            body["usage"] = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
        elif usage:
            body["usage"] = usage
        body.update(extra)
        return body


def _handler_for(upstream: FakeUpstream):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # quiet: tests read `upstream.requests` instead
            pass

        def _record(self) -> dict | None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            if upstream.record:
                recorded = RecordedRequest(
                    self.command, self.path, dict(self.headers), body, self.client_address[1], time.monotonic()
                )
                with upstream._lock:
                    upstream.requests.append(recorded)
            return body

        def setup(self):
            super().setup()
            # Each streamed chunk leaves at once instead of waiting for the previous one's ACK.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _stream(self, action: Action, body: dict) -> None:
            spec = action.reply or {}
            pieces = action.pieces if action.pieces is not None else _words("Echo: " + _last_user_message(body))
            if spec.get("cut"):  # an injected drop: half of the reply, then the connection closes
                pieces = pieces[: max(1, len(pieces) // 2)]
            chunks = upstream.stream_chunks(pieces, spec, model=body.get("model") or "mistralai/mistral-tiny")
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for chunk in chunks[: len(pieces)]:
                    self._event(json.dumps(chunk))
                    if action.seconds and self._client_left_within(action.seconds):
                        with upstream._lock:
                            upstream.disconnects.append(time.monotonic())
                        self.close_connection = True
                        return
                if action.end == "drop":
                    self.close_connection = True
                    return
                if action.end == "error":
                    self._event(json.dumps({"error": {"message": "Fake failure mid-stream", "type": "fake"}}))
                elif action.end == "hang":
                    time.sleep(spec.get("hang") or 0)
                    self.close_connection = True
                    return
                for chunk in chunks[len(pieces) :]:
                    self._event(json.dumps(chunk))
                self._event("[DONE]")
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client went away (Stop): nothing to finish

        def _client_left_within(self, seconds: float) -> bool:
            """Wait between two pieces, noticing at once when the client closes the connection."""
            readable, _, _ = select.select([self.connection], [], [], seconds)
            if not readable:
                return False
            try:
                return self.connection.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                return True

        def _event(self, data: str) -> None:
            payload = sse.format_event(data).encode()
            self.wfile.write(b"%X\r\n%s\r\n" % (len(payload), payload))

        def _send(self, status: int, body: bytes, headers: dict) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self._record()
            if self.path == "/__stats":
                with upstream._lock:
                    data = json.dumps(upstream.stats).encode()
                return self._send(200, data, {"Content-Type": "application/json"})
            if self.path.rstrip("/").endswith("/models"):
                action = upstream._next_scripted()
                if action is not None and action.kind == "raw":  # `fail` and `raw` script GET /models too
                    return self._send(action.status, action.body, action.headers)
                data = {"object": "list", "data": [{"id": "mistralai/mistral-tiny", "object": "model"}]}
                return self._send(200, json.dumps(data).encode(), {"Content-Type": "application/json"})
            self._send(404, b'{"error": {"message": "Not found"}}', {"Content-Type": "application/json"})

        def do_POST(self):
            body = self._record()
            if not self.path.rstrip("/").endswith("/chat/completions"):
                return self._send(404, b'{"error": {"message": "Not found"}}', {"Content-Type": "application/json"})
            action = upstream._next()
            if action.kind == "hang":
                time.sleep(action.seconds)
                action = Action("reply", reply={})
            if action.kind == "drop":
                self.close_connection = True
                self.connection.close()
                return
            if action.kind == "raw":
                return self._send(action.status, action.body, action.headers)
            if action.kind == "stream" and (action.reply or {}).get("cut") and not (body or {}).get("stream"):
                # An injected drop of a whole answer: the headers promise more than is sent.
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "4096")
                self.end_headers()
                self.wfile.write(b'{"id": "gen-cut", "choices": [')
                self.close_connection = True
                return
            if (body or {}).get("stream"):
                if action.kind == "reply":
                    content = (action.reply or {}).get("content")
                    pieces = _words(content) if content is not None else None
                    action = Action("stream", pieces=pieces, reply=action.reply, seconds=action.seconds)
                return self._stream(action, body)
            spec = dict(action.reply or {})
            if "content" not in spec:
                spec["content"] = "Echo: " + _last_user_message(body)
            reply = upstream.completion_body(
                spec.pop("content"),
                spec.pop("finish_reason", "stop"),
                spec.pop("usage", True),
                model=(body or {}).get("model") or "mistralai/mistral-tiny",
                **spec,
            )
            self._send(200, json.dumps(reply).encode(), {"Content-Type": "application/json"})

    return Handler


def _words(text: str) -> list[str]:
    """Split text into streamable pieces that join back exactly: each word with its trailing space."""
    return re.findall(r"\S+\s*|\s+", text)


def _last_user_message(body: dict | None) -> str:
    for message in reversed((body or {}).get("messages") or []):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds between streamed words")
    parser.add_argument("--faults", type=float, default=0.0, help="share of requests that fail (0 to 1)")
    parser.add_argument("--fault-kinds", default=",".join(FAULT_KINDS), help="comma-separated: 429,500,slow,drop")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault draws")
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After of an injected 429 (seconds)")
    parser.add_argument("--slow-seconds", type=float, default=2.0, help="delay of an injected slow answer")
    args = parser.parse_args()
    upstream = FakeUpstream(
        args.host,
        args.port,
        delay=args.delay,
        faults=args.faults,
        fault_kinds=tuple(kind for kind in args.fault_kinds.split(",") if kind),
        seed=args.seed,
        retry_after=args.retry_after,
        slow_seconds=args.slow_seconds,
        record=False,  # a long run would keep every request in memory
    ).start()
    print(f"Fake OpenAI-compatible upstream on {upstream.base_url} (echoes the last user message). Ctrl+C stops it.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        upstream.stop()


if __name__ == "__main__":
    main()
