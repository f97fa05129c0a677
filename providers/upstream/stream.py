"""A streamed reply, read from the upstream's server-sent events as its bytes arrive."""

import contextlib
import json
import logging
import socket
import time
from collections.abc import Iterator

import requests

from common import sse

from . import completion
from .config import UpstreamConfig
from .errors import UpstreamError, detail_of

logger = logging.getLogger(__name__)


class CompletionStream:
    """The text of a streamed completion as it arrives, read from the server-sent events.

    Each piece is yielded as soon as its bytes arrive: the body is read with `read1`, which
    returns whatever one socket read gives, instead of waiting to fill a buffer. After the
    iteration ends, `finish_reason`, `usage`, `model`, `response_id`, `first_token_ms` and
    `latency_ms` (from the request to the last byte, however the stream ended) describe the
    reply. A failure in the middle raises UpstreamError; the text yielded so
    far stays valid.
    """

    _READ_SIZE = 65536

    def __init__(
        self, response: requests.Response, *, config: UpstreamConfig, model: str, started: float | None = None
    ):
        self._response = response
        self._config = config
        # When the request was sent: a slow first byte is part of the reply's latency.
        self._started = time.monotonic() if started is None else started
        self._cancelled = False
        self._complete = False
        self.model = model
        self.finish_reason = ""
        self.response_id = ""
        self.usage: dict = {}
        self.first_token_ms: int | None = None
        self.latency_ms: int | None = None

    def __enter__(self) -> "CompletionStream":
        return self

    def __exit__(self, *exc_info) -> None:
        if self._complete and not self._cancelled:
            # Read the end of the body so the connection goes back to the pool: the next
            # reply then skips a new TCP (and TLS) handshake.
            self._response.raw.drain_conn()
            self._response.raw.release_conn()
        self._response.close()

    def close(self) -> None:
        """Cancel: end the stream and its upstream connection now; safe to call from another thread."""
        self._cancelled = True
        connection = getattr(self._response.raw, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            # shutdown, not close: it wakes a thread blocked reading this socket.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._response.close()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self._pieces()
        finally:
            # Stopped or cut too: the time until the last byte arrived.
            if self.latency_ms is None:
                self.latency_ms = self._elapsed_ms()

    def _pieces(self) -> Iterator[str]:
        content_type = self._response.headers.get("Content-Type", "")
        if "text/event-stream" not in content_type:
            # The upstream ignored "stream": true and answered in one piece.
            yield from self._whole_reply()
            return
        for data in self._events():
            if data == "[DONE]":
                self._complete = True
                self.latency_ms = self._elapsed_ms()
                return
            piece = self._read_chunk(data)
            if piece:
                if self.first_token_ms is None:
                    self.first_token_ms = self._elapsed_ms()
                yield piece
        if self._cancelled:
            return
        raise UpstreamError("stream_cut", streaming=True)

    def _whole_reply(self) -> Iterator[str]:
        whole = completion.from_response(
            self._response, latency_ms=self._elapsed_ms(), fallback_model=self.model, config=self._config
        )
        self.finish_reason, self.usage = whole.finish_reason, whole.usage
        self.model, self.response_id = whole.model, whole.response_id
        self.first_token_ms = self.latency_ms = self._elapsed_ms()  # the body is read: its last byte is in
        if whole.content:
            yield whole.content

    def _events(self) -> Iterator[str]:
        """The `data` of each server-sent event; comments (keep-alives) and other fields are skipped."""
        # Some servers end each event with a single newline: a complete JSON line is an event.
        parser = sse.Parser(ends_event=_looks_complete, data_only=True)
        for block in self._blocks():
            yield from parser.feed(block)
        yield from parser.end()

    def _blocks(self) -> Iterator[bytes]:
        raw = self._response.raw
        # An uncompressed body is read from http.client's response under urllib3's: one word
        # per read, urllib3's layer (decoding, counting) cost about as much as the read itself.
        encoding = self._response.headers.get("Content-Encoding", "identity").strip().lower()
        under = getattr(raw, "_fp", None)
        read1 = under.read1 if under is not None and encoding == "identity" else raw.read1
        while not self._cancelled:
            try:
                block = read1(self._READ_SIZE)
            except Exception as exc:  # urllib3 and socket errors differ by version; all mean the same here.
                if self._cancelled:
                    return
                if "timed out" in str(exc).lower():
                    raise UpstreamError("timeout", streaming=True) from None
                logger.info("upstream stream broke: %s", type(exc).__name__)
                raise UpstreamError("stream_cut", streaming=True) from None
            if not block:
                return
            yield block

    def _read_chunk(self, data: str) -> str:
        try:
            chunk = json.loads(data)
        except ValueError:
            raise UpstreamError("bad_response", detail="not JSON", streaming=True) from None
        if not isinstance(chunk, dict):
            return ""
        if "error" in chunk and not chunk.get("choices"):
            raise UpstreamError("upstream_error", detail=detail_of(chunk, self._config.api_key), streaming=True)
        self.response_id = self.response_id or str(chunk.get("id") or "")
        self.model = str(chunk.get("model") or self.model)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = completion.counts(usage)
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return ""
        choice = choices[0]
        if choice.get("finish_reason"):
            self.finish_reason = str(choice["finish_reason"])
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        content = delta.get("content")
        return content if isinstance(content, str) else ""

    def _elapsed_ms(self) -> int:
        return round((time.monotonic() - self._started) * 1000)


def _looks_complete(line: str) -> bool:
    return line == "[DONE]" or (line.startswith("{") and line.endswith("}"))
