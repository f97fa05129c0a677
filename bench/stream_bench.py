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
* CPU use of gunicorn, the fake upstream, the client and of other processes on the machine,
  the client's event-loop lag and the upstream's emit lateness, to show which process was the
  limit. Before each run the bench waits for other processes to be quiet, and a run during
  which they were not is measured again (--quiet-percent, --redo-noisy).

    .venv/bin/python bench/stream_bench.py --streams 100 --runs 3
    .venv/bin/python bench/stream_bench.py --streams 1 --runs 5 --framing close
    .venv/bin/python bench/stream_bench.py --streams 100 --words 600 --ramp-ms 10000 --samples words.csv

Percentiles are nearest-rank over all samples (all words of all streams). --samples writes
every word's emit and arrival time, for a closer look. The exit status is 1 when any stream
failed or any reply was not saved complete.
"""

import argparse
import asyncio
import bisect
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
PYTHON = ROOT / ".venv" / "bin" / "python"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
HOST = "127.0.0.1"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) chatsite-stream-bench"
WORD = re.compile(r"ts(\d+) ")
STREAM_URL = re.compile(r'data-stream-url="(/c/\d+/messages/(\d+)/stream/)"')
# The app's own settings and serving variables: the bench sets what it needs and drops the rest,
# so the caller's environment cannot point the app at a real upstream or another database.
APP_VARIABLE_PREFIXES = ("AIMLAPI_", "CHAT_", "GUNICORN_", "DATABASE_", "SECURE_", "DJANGO_")
APP_VARIABLES = {
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "HTTPS",
    "TIME_ZONE",
    "LOG_LEVEL",
    "HOST",
    "PORT",
    "WEB_CONCURRENCY",
    "FORWARDED_ALLOW_IPS",
    "CHATSITE_ENV_FILE",
    "PYTHONPATH",
}


# --- processes -----------------------------------------------------------------------------


class Processes:
    """Child processes, each in its own process group, stopped in reverse order of start."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, command: list[str], *, cwd: Path, env: dict, log: Path) -> subprocess.Popen:
        with open(log, "wb") as output:
            process = subprocess.Popen(  # noqa: S603 (our own fixed commands)
                command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.children.append((name, process))
        return process

    def stop_all(self) -> None:
        for _name, process in reversed(self.children):
            if process.poll() is None:
                # SIGINT is gunicorn's quick shutdown; the fake upstream stops on it too.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGINT)
        for _name, process in reversed(self.children):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        self.children.clear()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes, from /proc (threads included)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def machine_busy_seconds(*, interrupts: bool = True) -> float:
    """CPU time the whole machine (all cores) spent busy since boot, from /proc/stat.

    Interrupt and softirq time (loopback networking, mostly ours) is not charged to any
    process; `interrupts=False` leaves it out.
    """
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    busy = user + nice + system + steal + (irq + softirq if interrupts else 0)
    return busy / os.sysconf("SC_CLK_TCK")


async def wait_for_quiet(limit_percent: float, patience: float, pids: dict, *, quiet_seconds: int = 3) -> None:
    """Wait until processes other than the bench's have used less than limit_percent of a core
    for quiet_seconds in a row.

    Other work on a 2-core machine (a test run, a browser) adds its own delays to the numbers;
    each run also reports how much CPU other processes used while it ran.
    """
    deadline = time.monotonic() + patience
    warned, quiet = False, 0
    while quiet < quiet_seconds:
        before = machine_busy_seconds(interrupts=False) - bench_cpu_seconds(pids)
        await asyncio.sleep(1.0)
        busy = (machine_busy_seconds(interrupts=False) - bench_cpu_seconds(pids) - before) * 100
        quiet = quiet + 1 if busy <= limit_percent else 0
        if quiet == 0 and time.monotonic() >= deadline:
            print(f"    warning: other processes still use {busy:.0f}% of a core; measuring anyway", flush=True)
            return
        if quiet == 0 and not warned:
            print(f"    waiting for a quiet machine (other processes use {busy:.0f}% of a core) ...", flush=True)
            warned = True


def bench_cpu_seconds(pids: dict) -> float:
    """CPU time of gunicorn (master and workers), the fake upstream and this process."""
    return cpu_seconds([*process_tree(pids["gunicorn"]), pids["upstream"]]) + sum(os.times()[:2])


def process_tree(pid: int) -> list[int]:
    """pid and its direct children (gunicorn's master and its workers)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append(int(entry.name))
    return [pid, *children]


# --- the app and the upstream --------------------------------------------------------------


def prepare_app(tmp: Path, source: str) -> Path:
    """A copy of the app to serve: the working tree (without .env, var/, .git) or a commit."""
    app = tmp / "app"
    if source != "worktree":
        app.mkdir()
        command = ["git", "-C", str(ROOT), "archive", source]
        archive = subprocess.run(command, check=True, capture_output=True)  # noqa: S603
        subprocess.run(["tar", "-x", "-C", str(app)], input=archive.stdout, check=True)  # noqa: S603, S607
    else:
        ignore = shutil.ignore_patterns(
            ".venv", ".git", "var", "bench", "tests", ".env", "__pycache__", ".pytest_cache", ".ruff_cache"
        )
        shutil.copytree(ROOT, app, ignore=ignore)
    (app / "var").mkdir(exist_ok=True)
    return app


def source_description(source: str) -> str:
    def git(*args: str) -> str:
        result = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)  # noqa: S603, S607
        return result.stdout.strip()

    if source != "worktree":
        return f"commit {git('rev-parse', '--short', source) or source}"
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench")
    return f"working tree at {commit}" + (" with uncommitted changes" if dirty else "")


def app_environment(args, tmp: Path, app_port: int, upstream_port: int) -> dict:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in APP_VARIABLES and not name.startswith(APP_VARIABLE_PREFIXES)
    }
    (tmp / "empty.env").write_text("")
    env.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        CHATSITE_ENV_FILE=str(tmp / "empty.env"),
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        AIMLAPI_BASE_URL=f"http://{HOST}:{upstream_port}/v1",
        AIMLAPI_API_KEY="bench-fake-key-not-a-real-one",
        AIMLAPI_MODEL="bench/fake",
        HOST=HOST,
        PORT=str(app_port),
        HTTPS="0",
        # gunicorn >= 25.1 opens a control socket in $XDG_RUNTIME_DIR, else in ~/.gunicorn/.
        XDG_RUNTIME_DIR=str(tmp),
    )
    for item in args.app_env:
        name, _, value = item.partition("=")
        env[name] = value
    return env


def prepare_database(app: Path, env: dict, users: int, password: str) -> None:
    def manage(*command: str, extra_env: dict | None = None) -> str:
        result = subprocess.run(  # noqa: S603
            [str(PYTHON), "manage.py", *command],
            cwd=app,
            env={**env, **(extra_env or {})},
            capture_output=True,
            text=True,
        )
        if result.returncode:
            raise RuntimeError(f"manage.py {' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    manage("migrate", "--noinput", "--verbosity", "0")
    manage("collectstatic", "--noinput", "--verbosity", "0")
    # One password hash for every account: hashing it per user would take ~0.2 s each.
    code = (
        "import os, chatsite\n"
        "from django.contrib.auth import get_user_model\n"
        "from django.contrib.auth.hashers import make_password\n"
        "User = get_user_model()\n"
        "hashed = make_password(os.environ['BENCH_PASSWORD'])\n"
        "n = int(os.environ['BENCH_USERS'])\n"
        "User.objects.bulk_create([User(username=f'bench{i}', password=hashed) for i in range(n)])\n"
        "print(chatsite.__file__)\n"
    )
    where = manage("shell", "-c", code, extra_env={"BENCH_USERS": str(users), "BENCH_PASSWORD": password})
    where = where.strip().splitlines()[-1] if where.strip() else ""
    if not where.startswith(str(app)):
        raise RuntimeError(f"the app was imported from {where}, not from the copy in {app}")


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


# --- a small HTTP/1.1 client that stamps every block on arrival ----------------------------


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


class ComposerForm(HTMLParser):
    """The fields htmx sends with the composer form (`<form id="composer">`) and the page's CSRF header."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.csrf_header = ""
        self._depth = 0
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body" and attrs.get("hx-headers"):
            self.csrf_header = json.loads(attrs["hx-headers"]).get("X-CSRFToken", "")
        if tag == "form" and attrs.get("id") == "composer":
            self._depth = 1
        elif tag == "form" and self._depth:
            self._depth += 1
        if not self._depth or not attrs.get("name"):
            return
        if tag == "input" and attrs.get("type") not in ("submit", "button", "checkbox", "radio"):
            self.fields[attrs["name"]] = attrs.get("value") or ""
        elif tag == "textarea":
            self._textarea = attrs["name"]
            self.fields[attrs["name"]] = ""
        elif tag == "select":
            self.fields[attrs["name"]] = ""

    def handle_data(self, data):
        if self._textarea:
            self.fields[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "form" and self._depth:
            self._depth -= 1


# --- simulated users -----------------------------------------------------------------------


@dataclass
class Conversation:
    """One submitted message and the streamed reply, as seen by the client."""

    user: int
    tag: str
    submit_ns: int = 0
    posted_ns: int = 0
    message_id: int = 0
    stream: Response | None = None
    error: str = ""
    # Filled in by analyse():
    text: str = ""
    words: list[tuple[int, int]] = field(default_factory=list)  # (emit µs, arrival µs)
    done: bool = False


class User:
    def __init__(self, index: int, port: int, password: str) -> None:
        self.index = index
        self.port = port
        self.origin = f"http://{HOST}:{port}"
        self.username = f"bench{index}"
        self.password = password
        self.cookies: dict[str, str] = {}
        self.fields: dict[str, str] = {}
        self.csrf_header = ""

    def _headers(self, **extra) -> dict:
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        headers.update(extra)
        return headers

    def composer_headers(self) -> dict:
        """The headers of the composer's POST as htmx sends it from the home page."""
        return self._headers(
            Accept="*/*",
            Origin=self.origin,
            Referer=self.origin + "/",
            **{
                "Content-Type": "application/x-www-form-urlencoded",
                "HX-Request": "true",
                "HX-Current-URL": self.origin + "/",
                "HX-Target": "chat-pane",
                "HX-Trigger": "composer",
                "X-CSRFToken": self.csrf_header,
            },
        )

    def event_source_headers(self) -> dict:
        """The headers of the browser's EventSource GET of a reply's stream."""
        return self._headers(Accept="text/event-stream", Referer=self.origin + "/", **{"Cache-Control": "no-cache"})

    def _keep_cookies(self, response: Response) -> None:
        for name, value in response.headers:
            if name == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key.strip()] = rest.split(";", 1)[0]

    async def sign_in(self) -> None:
        """The login form, then the chat page (as a browser does after the redirect)."""
        conn = await HttpConnection.open(HOST, self.port)
        try:
            page = await conn.request("GET", "/accounts/login/", self._headers(Accept="text/html"))
            self._keep_cookies(page)
            token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body())
            if page.status != 200 or not token:
                raise RuntimeError(f"{self.username}: login page answered {page.status}")
            form = {"csrfmiddlewaretoken": token.group(1).decode(), "username": self.username}
            form.update(password=self.password, next="")
            headers = self._headers(
                Accept="text/html",
                Origin=self.origin,
                Referer=self.origin + "/accounts/login/",
                **{"Content-Type": "application/x-www-form-urlencoded"},
            )
            if conn.closed:
                conn = await HttpConnection.open(HOST, self.port)
            login = await conn.request("POST", "/accounts/login/", headers, urlencode(form).encode())
            self._keep_cookies(login)
            if login.status != 302 or "sessionid" not in self.cookies:
                raise RuntimeError(f"{self.username}: sign-in failed with HTTP {login.status}")
            if conn.closed:
                conn = await HttpConnection.open(HOST, self.port)
            index = await conn.request("GET", "/", self._headers(Accept="text/html"))
            self._keep_cookies(index)
            parser = ComposerForm()
            parser.feed(index.body().decode())
            if index.status != 200 or "content" not in parser.fields or not parser.csrf_header:
                raise RuntimeError(f"{self.username}: the chat page answered {index.status} without a composer")
            self.fields, self.csrf_header = parser.fields, parser.csrf_header
        finally:
            conn.close()

    async def converse(self, tag: str, start: asyncio.Event, delay: float, timeout: float) -> Conversation:
        conversation = Conversation(user=self.index, tag=tag)
        await start.wait()
        if delay:
            await asyncio.sleep(delay)
        try:
            await asyncio.wait_for(self._converse(conversation), timeout)
        except TimeoutError:
            conversation.error = f"timeout after {timeout:g} s"
        except Exception as exc:
            conversation.error = f"{type(exc).__name__}: {exc}"
        return conversation

    async def _converse(self, conversation: Conversation) -> None:
        conversation.submit_ns = time.time_ns()
        conn = await HttpConnection.open(HOST, self.port)
        try:
            # The composer's fields, as htmx serialises the form, with a fresh client_id.
            form = {**self.fields, "client_id": str(uuid.uuid4()), "content": conversation.tag}
            headers = self.composer_headers()
            posted = await conn.request("POST", "/c/", headers, urlencode(form).encode())
            conversation.posted_ns = posted.end_ns
            match = STREAM_URL.search(posted.body().decode("utf-8", "replace"))
            if posted.status != 200 or not match:
                raise RuntimeError(f"POST /c/ answered {posted.status} without a stream URL")
            conversation.message_id = int(match.group(2))
            # EventSource: a plain GET on the same (kept-alive) connection, offset 0.
            if conn.closed:
                conn = await HttpConnection.open(HOST, self.port)
            headers = self.event_source_headers()
            conversation.stream = await conn.request("GET", match.group(1) + "?offset=0", headers)
            if conversation.stream.status != 200:
                raise RuntimeError(f"the stream answered {conversation.stream.status}")
        finally:
            conn.close()


# --- analysis ------------------------------------------------------------------------------


def analyse(conversation: Conversation) -> None:
    """Split the stream into events and stamp each word with the arrival of the event holding it."""
    if conversation.stream is None:
        return
    events, buffer = [], b""
    for now, piece in conversation.stream.body_pieces():
        buffer += piece
        while (end := buffer.find(b"\n\n")) >= 0:
            block, buffer = buffer[:end], buffer[end + 2 :]
            kind, data, event_id = "message", [], None
            for line in block.decode().split("\n"):
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "event":
                    kind = value
                elif name == "data":
                    data.append(value)
                elif name == "id":
                    event_id = value
            if data or kind != "message":
                events.append((now, kind, event_id, "\n".join(data)))
    text, ends, arrivals = "", [], []
    for now, kind, event_id, data in events:
        if kind == "text":
            text += json.loads(data)
            ends.append(len(text))
            arrivals.append(now // 1000)
            if event_id != str(len(text)) and not conversation.error:
                conversation.error = f"event id {event_id} is not the text length {len(text)}"
        elif kind == "done":
            conversation.done = "html" in json.loads(data)
    conversation.text = text
    for match in WORD.finditer(text):
        event = bisect.bisect_left(ends, match.end())
        conversation.words.append((int(match.group(1)), arrivals[event]))
    if not conversation.done and not conversation.error:
        conversation.error = "the stream ended without a done event"


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def check_database(db: Path, conversations: list[Conversation], sent: dict[str, str]) -> dict:
    """Compare each reply in the database with the text the upstream sent for it."""
    ids = [c.message_id for c in conversations if c.message_id]
    rows = {}
    if ids:
        with contextlib.closing(sqlite3.connect(db, timeout=30)) as connection:
            marks = ",".join("?" * len(ids))
            query = f"SELECT id, role, status, content FROM conversations_message WHERE id IN ({marks})"  # noqa: S608
            rows = {row[0]: row[1:] for row in connection.execute(query, ids)}
    counts = {"complete_full": 0, "truncated": 0, "lost": 0}
    for conversation in conversations:
        expected = sent.get(conversation.tag)
        role, status, content = rows.get(conversation.message_id, ("", "", ""))
        if expected is not None and role == "assistant" and status == "complete" and content == expected:
            counts["complete_full"] += 1
        elif expected is not None and content and expected.startswith(content):
            counts["truncated"] += 1
        else:
            counts["lost"] += 1
    return counts


@dataclass
class RunResult:
    run: int | str
    streams: int
    completed: int
    errors: list[str]
    database: dict
    relay_ms: list[float]
    later_ms: list[float]
    steady_ms: list[float]
    first_ms: list[float]
    ttft_ms: list[float]
    post_ms: list[float]
    cpu: dict
    wall_s: float
    loop_lag_ms: list[float]
    emit_late_ms: list[float]

    @classmethod
    def combine(cls, results: list["RunResult"]) -> "RunResult":
        """All runs as one sample (run "all"); CPU shares are averaged over the total time."""

        def joined(name: str) -> list:
            return [value for result in results for value in getattr(result, name)]

        database = {key: sum(r.database[key] for r in results) for key in results[0].database}
        cpu = {name: sum(r.cpu.get(name, 0.0) for r in results) for name in results[0].cpu}
        return cls(
            run="all",
            streams=sum(r.streams for r in results),
            completed=sum(r.completed for r in results),
            errors=joined("errors"),
            database=database,
            relay_ms=joined("relay_ms"),
            later_ms=joined("later_ms"),
            steady_ms=joined("steady_ms"),
            first_ms=joined("first_ms"),
            ttft_ms=joined("ttft_ms"),
            post_ms=joined("post_ms"),
            cpu=cpu,
            wall_s=sum(r.wall_s for r in results),
            loop_lag_ms=joined("loop_lag_ms"),
            emit_late_ms=joined("emit_late_ms"),
        )

    def summary(self) -> dict:
        def stats(values, *ps):
            return {f"p{p}": round(percentile(values, p), 2) for p in ps} | {"max": round(max(values, default=0), 2)}

        return {
            "run": self.run,
            "streams": self.streams,
            "completed": self.completed,
            "errors": len(self.errors),
            "error_samples": sorted(set(self.errors))[:5],
            "database": self.database,
            "words": len(self.relay_ms),
            "relay_ms": stats(self.relay_ms, 50, 99),
            "relay_after_first_ms": stats(self.later_ms, 50, 99),
            "steady_words": len(self.steady_ms),
            "relay_steady_ms": stats(self.steady_ms, 50, 99),
            "first_word_ms": stats(self.first_ms, 50, 95),
            "ttft_from_submit_ms": stats(self.ttft_ms, 50, 95),
            "post_ms": stats(self.post_ms, 50, 95),
            "cpu_percent": {name: round(100 * seconds / self.wall_s, 1) for name, seconds in self.cpu.items()},
            "wall_s": round(self.wall_s, 2),
            "client_loop_lag_ms": stats(self.loop_lag_ms, 99),
            "upstream_emit_late_ms": stats(self.emit_late_ms, 99),
        }


async def loop_lag(samples: list[float], stop: asyncio.Event) -> None:
    """How late this event loop wakes up from a 5 ms sleep: the client's own queueing delay."""
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.005)
        samples.append((time.perf_counter() - before - 0.005) * 1000)


async def upstream_stats(port: int) -> dict:
    conn = await HttpConnection.open(HOST, port)
    try:
        return json.loads((await conn.request("GET", "/__stats", {})).body())
    finally:
        conn.close()


async def one_run(
    args, run: int, users: list[User], pids: dict, upstream_port: int, db: Path, samples: list | None = None
) -> RunResult:
    before_stats = await upstream_stats(upstream_port)
    start, stop = asyncio.Event(), asyncio.Event()
    timeout = args.timeout or (args.first_token_ms + args.words * args.interval_ms) / 1000 + 60
    tasks = [
        asyncio.create_task(
            user.converse(
                f"bench run {run} user {user.index} {uuid.uuid4()}",
                start,
                args.ramp_ms / 1000 * i / max(1, len(users)),
                timeout,
            )
        )
        for i, user in enumerate(users)
    ]
    lag: list[float] = []
    lag_task = asyncio.create_task(loop_lag(lag, stop))
    await asyncio.sleep(0.05)
    cpu_before = {name: cpu_seconds(process_tree(pid) if name == "gunicorn" else [pid]) for name, pid in pids.items()}
    client_before = sum(os.times()[:2])
    machine_before = machine_busy_seconds(interrupts=False)
    interrupts_before = machine_busy_seconds() - machine_before
    wall_before = time.monotonic()
    start.set()
    conversations = await asyncio.gather(*tasks)
    wall = time.monotonic() - wall_before
    cpu = {
        name: cpu_seconds(process_tree(pid) if name == "gunicorn" else [pid]) - cpu_before[name]
        for name, pid in pids.items()
    }
    cpu["client"] = sum(os.times()[:2]) - client_before
    machine = machine_busy_seconds(interrupts=False)
    interrupts = machine_busy_seconds() - machine - interrupts_before
    cpu["other processes"] = max(0.0, machine - machine_before - sum(cpu.values()))
    cpu["softirq"] = interrupts
    stop.set()
    await lag_task

    stats = await upstream_stats(upstream_port)
    sent = stats["replies"]
    emit_late = [us / 1000 for us in stats["emit_late_us"][len(before_stats["emit_late_us"]) :]]
    errors, relay, later, steady, first, ttft, post = [], [], [], [], [], [], []
    # Words emitted once every POST of the run was answered: streams only, no new conversations.
    last_posted_us = max((c.posted_ns for c in conversations), default=0) // 1000
    completed = 0
    for conversation in conversations:
        analyse(conversation)
        expected = sent.get(conversation.tag)
        if not conversation.error and conversation.text != expected:
            conversation.error = "the streamed text differs from what the upstream sent"
        if conversation.error:
            errors.append(conversation.error)
        elif conversation.done:
            completed += 1
        if conversation.posted_ns:
            post.append((conversation.posted_ns - conversation.submit_ns) / 1e6)
        if samples is not None:
            samples += [
                (
                    run,
                    conversation.user,
                    i,
                    emit,
                    arrival,
                    conversation.submit_ns // 1000,
                    conversation.posted_ns // 1000,
                )
                for i, (emit, arrival) in enumerate(conversation.words)
            ]
        if conversation.words:
            relay += [(arrival - emit) / 1000 for emit, arrival in conversation.words]
            later += [(arrival - emit) / 1000 for emit, arrival in conversation.words[1:]]
            steady += [(arrival - emit) / 1000 for emit, arrival in conversation.words if emit > last_posted_us]
            emit, arrival = conversation.words[0]
            first.append((arrival - emit) / 1000)
            ttft.append((arrival - conversation.submit_ns / 1000) / 1000)
    database = check_database(db, conversations, sent)
    return RunResult(
        run, len(users), completed, errors, database, relay, later, steady, first, ttft, post, cpu, wall, lag, emit_late
    )


def print_summary(summary: dict) -> None:
    s = summary
    db = s["database"]
    print(
        f"  run {s['run']}: {s['completed']}/{s['streams']} streams completed, {s['errors']} errors, "
        f"database: {db['complete_full']} complete with the full text, {db['truncated']} truncated, {db['lost']} lost"
    )
    print(
        f"    relay per word ({s['words']} words): median {s['relay_ms']['p50']:.2f} ms, "
        f"p99 {s['relay_ms']['p99']:.2f} ms, max {s['relay_ms']['max']:.2f} ms; "
        f"after the first word: median {s['relay_after_first_ms']['p50']:.2f} ms, "
        f"p99 {s['relay_after_first_ms']['p99']:.2f} ms"
    )
    if s["streams"] > 1:
        print(
            f"    relay once every POST was answered ({s['steady_words']} words): "
            f"median {s['relay_steady_ms']['p50']:.2f} ms, p99 {s['relay_steady_ms']['p99']:.2f} ms, "
            f"max {s['relay_steady_ms']['max']:.2f} ms"
        )
    print(
        f"    first word: median +{s['first_word_ms']['p50']:.2f} ms, p95 +{s['first_word_ms']['p95']:.2f} ms"
        f" (time to first token from submit: median {s['ttft_from_submit_ms']['p50']:.1f} ms,"
        f" p95 {s['ttft_from_submit_ms']['p95']:.1f} ms; POST /c/ median {s['post_ms']['p50']:.1f} ms,"
        f" p95 {s['post_ms']['p95']:.1f} ms)"
    )
    cpu = ", ".join(f"{name} {value:.0f}%" for name, value in s["cpu_percent"].items())
    print(
        f"    CPU (100% = one core) over {s['wall_s']:.1f} s: {cpu}; "
        f"client loop lag p99 {s['client_loop_lag_ms']['p99']:.2f} ms; "
        f"upstream emit lateness p99 {s['upstream_emit_late_ms']['p99']:.2f} ms"
    )
    for sample in s["error_samples"]:
        print(f"    error: {sample}")


# --- main ----------------------------------------------------------------------------------


async def bench(args, tmp: Path, processes: Processes) -> list[dict]:
    app = prepare_app(tmp, args.source)
    app_port, upstream_port = free_port(), free_port()
    env = app_environment(args, tmp, app_port, upstream_port)
    password = secrets.token_urlsafe(16)
    print(f"Preparing the app ({source_description(args.source)}) in {app} ...", flush=True)
    prepare_database(app, env, args.streams, password)

    upstream_command = [str(PYTHON), str(BENCH / "fake_upstream.py"), "--port", str(upstream_port)]
    upstream_command += ["--words", str(args.words), "--interval-ms", str(args.interval_ms)]
    upstream_command += ["--first-token-ms", str(args.first_token_ms), "--framing", args.framing]
    upstream = processes.start("upstream", upstream_command, cwd=BENCH, env=os.environ.copy(), log=tmp / "upstream.log")
    await wait_until_up(upstream_port, "/__stats", upstream, tmp / "upstream.log")

    # The Procfile's command (bound to 127.0.0.1 instead of 0.0.0.0).
    server_command = [str(GUNICORN), "chatsite.wsgi", "--config", "gunicorn.conf.py"]
    server = processes.start("gunicorn", server_command, cwd=app, env=env, log=tmp / "gunicorn.log")
    await wait_until_up(app_port, "/healthz", server, tmp / "gunicorn.log")
    print(
        f"gunicorn (pid {server.pid}) on {HOST}:{app_port}; fake upstream (pid {upstream.pid}, {args.framing}) "
        f"on {HOST}:{upstream_port}: {args.words} words, {args.interval_ms:g} ms apart, "
        f"first after {args.first_token_ms:g} ms",
        flush=True,
    )

    users = [User(i, app_port, password) for i in range(args.streams)]
    await sign_in_all(users, args.login_concurrency)

    pids = {"gunicorn": server.pid, "upstream": upstream.pid}
    if args.warmup:
        warm = await one_run(args, 0, users[:1], pids, upstream_port, tmp / "db.sqlite3")
        if warm.errors or warm.completed != 1:
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
            summary = result.summary()
            print_summary(summary)
            await asyncio.sleep(args.pause)
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
    parser.add_argument("--runs", type=int, default=1, help="timed runs against the same server (default 1)")
    parser.add_argument("--ramp-ms", type=float, default=0.0, help="spread the submits over this long (default 0)")
    parser.add_argument(
        "--source",
        default="worktree",
        help="the code to serve: the working tree (default) or a commit, e.g. HEAD (via git archive)",
    )
    parser.add_argument(
        "--app-env", action="append", default=[], metavar="NAME=VALUE", help="extra app setting (repeatable)"
    )
    parser.add_argument("--login-concurrency", type=int, default=4, help="sign-ins at once before the runs")
    parser.add_argument("--timeout", type=float, default=0.0, help="per conversation (default: reply length + 60 s)")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between runs")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false", help="skip the untimed first conversation")
    parser.add_argument("--json", type=Path, help="also write the summaries to this file")
    parser.add_argument("--samples", type=Path, help="write every word's emit and arrival time to this CSV file")
    parser.add_argument(
        "--quiet-percent",
        type=float,
        default=20.0,
        help="before each run, wait until other processes use less CPU than this (%% of one core; default 20)",
    )
    parser.add_argument(
        "--redo-noisy",
        type=int,
        default=2,
        help="measure a run again when other processes used more than --quiet-percent during it (default 2)",
    )
    parser.add_argument("--quiet-wait", type=float, default=180.0, help="wait at most this long for it (default 180 s)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, database)")
    args = parser.parse_args(argv)
    if args.streams < 1 or args.words < 1 or args.runs < 1:
        parser.error("--streams, --words and --runs must be at least 1")
    return args


async def sign_in_all(users: list, concurrency: int) -> None:
    """Sign every user in through the login form, `concurrency` at a time (hashing a password
    costs CPU; all at once would only queue in the server)."""
    limit = asyncio.Semaphore(concurrency)

    async def sign_in(user) -> None:
        async with limit:
            await user.sign_in()

    began = time.monotonic()
    await asyncio.gather(*(sign_in(user) for user in users))
    print(f"{len(users)} users signed in ({time.monotonic() - began:.1f} s).", flush=True)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def bench_run(prefix: str, *, keep: bool, kept: str) -> Iterator[tuple[Path, "Processes"]]:
    """A temporary directory and the child processes of one run. SIGTERM ends the run like
    Ctrl+C; however it ends, the children are stopped and the directory removed (unless --keep)."""
    signal.signal(signal.SIGTERM, _interrupt)
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    processes = Processes()
    try:
        yield tmp, processes
    finally:
        processes.stop_all()
        if keep:
            print(f"Kept {tmp} ({kept}).")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not GUNICORN.exists():
        print(f"{GUNICORN} is missing: install requirements.txt into .venv first", file=sys.stderr)
        return 2
    try:
        with bench_run("chatsite-bench-", keep=args.keep, kept="gunicorn.log, upstream.log, db.sqlite3") as run:
            summaries = asyncio.run(bench(args, *run))
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "runs": summaries}))
    failed = any(
        s["errors"] or s["completed"] != s["streams"] or s["database"]["complete_full"] != s["streams"]
        for s in summaries
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
