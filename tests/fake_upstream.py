"""An OpenAI-compatible chat completions server on 127.0.0.1, for tests and for trying chatsite.

It answers `POST /v1/chat/completions` with the exact response shape of the AI/ML API and
`GET /v1/models`. By default it echoes the last user message; a test scripts other answers
(errors, hangs, malformed bodies) with `reply`, `fail`, `raw`, `hang` and `drop`, one per
request, in order. Every request is recorded with its headers and JSON body.

Run alone: `python -m tests.fake_upstream --port 8001`, then start chatsite with
`AIMLAPI_BASE_URL=http://127.0.0.1:8001/v1 AIMLAPI_API_KEY=anything`.
"""

import argparse
import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict
    json: dict | None
    client_port: int = 0


@dataclass
class Action:
    kind: str  # "reply", "raw", "hang", "drop"
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    seconds: float = 0.0
    reply: dict | None = None


class FakeUpstream:
    """A scriptable upstream. Start it with `start()`, point AIMLAPI_BASE_URL at `base_url`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.requests: list[RecordedRequest] = []
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

    # --- scripting: each call queues the answer to one future request ---------------------
    def reply(
        self, content: str = "Hello from the fake upstream.", *, finish_reason: str = "stop", usage=True, **extra
    ) -> None:
        self._push(Action("reply", reply={"content": content, "finish_reason": finish_reason, "usage": usage, **extra}))

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

    def _next(self) -> Action:
        with self._lock:
            return self._script.popleft() if self._script else Action("reply", reply={})

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
            with upstream._lock:
                upstream.requests.append(
                    RecordedRequest(self.command, self.path, dict(self.headers), body, self.client_address[1])
                )
            return body

        def _send(self, status: int, body: bytes, headers: dict) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self._record()
            if self.path.rstrip("/").endswith("/models"):
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


def _last_user_message(body: dict | None) -> str:
    for message in reversed((body or {}).get("messages") or []):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    upstream = FakeUpstream(args.host, args.port).start()
    print(f"Fake OpenAI-compatible upstream on {upstream.base_url} (echoes the last user message). Ctrl+C stops it.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        upstream.stop()


if __name__ == "__main__":
    main()
