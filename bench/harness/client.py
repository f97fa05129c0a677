"""A small HTTP/1.1 client on asyncio that stamps every received block with its arrival time.

It writes and parses HTTP itself, stamps each block with time.time_ns() in `data_received`, and
leaves the parsing of bodies until after a run, so the client stays cheap while it measures.
"""

import asyncio
import json
import socket
import subprocess
import time
from pathlib import Path

from common import sse

from . import HOST


class Response:
    """One HTTP response as it arrives: the head, then the body blocks with their arrival time (ns)."""

    def __init__(self) -> None:
        self.future: asyncio.Future = asyncio.get_running_loop().create_future()
        self.head = b""
        self.status: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.blocks: list[tuple[int, bytes]] = []
        self.head_ns = 0
        self.end_ns = 0
        self.framing = ""
        self.length = 0
        self.received = 0
        self.tail = b""

    def header(self, name: str) -> str:
        return next((value for key, value in self.headers if key == name), "")

    def feed(self, now: int, data: bytes) -> bool:
        """Take arriving bytes; True once the response is complete."""
        if self.status is None:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return False
            head, data = self.head[:end].decode("latin-1"), self.head[end + 4 :]
            status_line, *lines = head.split("\r\n")
            self.status = int(status_line.split(" ", 2)[1])
            for line in lines:
                name, _, value = line.partition(":")
                self.headers.append((name.strip().lower(), value.strip()))
            self.head_ns = now
            if "chunked" in self.header("transfer-encoding").lower():
                self.framing = "chunked"
            elif self.header("content-length"):
                self.framing, self.length = "length", int(self.header("content-length"))
            else:
                self.framing = "close"
        if data:
            self.blocks.append((now, data))
            self.received += len(data)
        if self.framing == "length":
            return self.received >= self.length
        if self.framing == "chunked" and data:
            self.tail = (self.tail + data)[-7:]
            return self.tail.endswith(b"\r\n0\r\n\r\n") or (self.received == 5 and self.tail == b"0\r\n\r\n")
        return False

    def body_pieces(self) -> list[tuple[int, bytes]]:
        """The body without its framing, as (arrival ns, bytes) pieces."""
        if self.framing != "chunked":
            return list(self.blocks)
        pieces, buffer, left, state = [], b"", 0, "size"
        for now, data in self.blocks:
            buffer += data
            while buffer:
                if state == "size":
                    end = buffer.find(b"\r\n")
                    if end < 0:
                        break
                    left, buffer = int(buffer[:end].split(b";")[0], 16), buffer[end + 2 :]
                    if left == 0:
                        return pieces
                    state = "data"
                elif state == "data":
                    take = buffer[:left]
                    pieces.append((now, take))
                    left -= len(take)
                    buffer = buffer[len(take) :]
                    if left == 0:
                        state = "crlf"
                else:
                    if len(buffer) < 2:
                        break
                    buffer, state = buffer[2:], "size"
        return pieces

    def body(self) -> bytes:
        return b"".join(piece for _, piece in self.body_pieces())

    def events(self) -> list[tuple[int, sse.Event]]:
        """The body's server-sent events, each with the arrival (ns) of the block that completed it."""
        parser = sse.Parser()
        return [(now, event) for now, piece in self.body_pieces() for event in parser.feed(piece)]


class HttpConnection(asyncio.Protocol):
    """A keep-alive HTTP/1.1 connection, one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.response: Response | None = None
        self.closed = False
        self.host = ""

    @classmethod
    async def open(cls, host: str, port: int) -> "HttpConnection":
        _, protocol = await asyncio.get_running_loop().create_connection(cls, host, port)
        protocol.host = f"{host}:{port}"
        return protocol

    def connection_made(self, transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        response = self.response
        if response is None or response.future.done():
            return
        try:
            complete = response.feed(now, data)
        except Exception as exc:  # a malformed response fails this request, not the loop
            response.future.set_exception(exc)
            return
        if complete:
            response.end_ns = now
            response.future.set_result(response)

    def connection_lost(self, exc) -> None:
        self.closed = True
        response = self.response
        if response is not None and not response.future.done():
            if response.status is not None and response.framing == "close":
                response.end_ns = time.time_ns()
                response.future.set_result(response)
            else:
                response.future.set_exception(ConnectionError("the server closed the connection mid-response"))

    async def request(self, method: str, path: str, headers: dict, body: bytes = b"") -> Response:
        if self.closed or self.transport is None:
            raise ConnectionError("connection closed")
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        self.response = Response()
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        response = await self.response.future
        if response.header("connection").lower() == "close":
            self.close()
        return response

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.closed = True


async def fetch_json(port: int, path: str, payload: dict | None = None) -> dict:
    """GET a JSON document, or POST `payload` as JSON, on a connection of its own."""
    conn = await HttpConnection.open(HOST, port)
    try:
        if payload is None:
            response = await conn.request("GET", path, {})
        else:
            body = json.dumps(payload).encode()
            response = await conn.request("POST", path, {"Content-Type": "application/json"}, body)
        return json.loads(response.body())
    finally:
        conn.close()


async def wait_until_up(port: int, path: str, process: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{log.name}: the process exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            conn = await HttpConnection.open(HOST, port)
            try:
                response = await asyncio.wait_for(conn.request("GET", path, {}), 2)
            finally:
                conn.close()
            if response.status == 200:
                return
        except (OSError, TimeoutError):
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{log.name}: not answering on port {port} after {timeout:g} s:\n{log.read_text()[-3000:]}")
