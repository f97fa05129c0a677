"""Two gunicorn processes sharing the database (and Redis, when REDIS_URL is set), as behind a
load balancer: a person signs in on one, a reply is started there, followed over server-sent
events from the other, and stopped from the other.

The suite runs it on whatever engines it runs on: SQLite with database sessions under
`make test`, PostgreSQL with sessions and the cache in Redis under `make test-scaleout`.
"""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.cache import caches
from django.db import connection

from common import sse
from conversations.models import Message
from providers.upstream import breaker
from tests.conftest import API_KEY, PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
WORDS = " ".join(f"word{i}" for i in range(60))


def _database_url() -> str:
    """The test database of this run, as a URL for another process."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    if connection.vendor != "postgresql":
        pytest.skip(f"no URL form for the {connection.vendor} test database")
    user = quote(db["USER"] or "", safe="") + (f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else "")
    return f"postgres://{user}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """One gunicorn master with one worker: a separate process, as on another host."""

    def __init__(self, name: str, tmp: Path, upstream_url: str, database_url: str, **overrides: str) -> None:
        self.port = _free_port()
        self.log = tmp / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIMLAPI_", "CHAT_", "GUNICORN_", "PYTEST"))}
        env.update(
            # DEBUG=1 only so pages render from static/ without collectstatic's manifest.
            DEBUG="1",
            SECRET_KEY=settings.SECRET_KEY,  # the suite's, so both processes sign alike
            CHATSITE_ENV_FILE=str(tmp / "no-env-file"),
            DATABASE_URL=database_url,
            REDIS_URL=os.environ.get("REDIS_URL", ""),
            AIMLAPI_BASE_URL=upstream_url,
            AIMLAPI_API_KEY=API_KEY,
            CHAT_STREAM_SAVE_INTERVAL_MS="100",
            # For the breaker test: two failures in a row open it, for a short while.
            AIMLAPI_RETRIES="0",
            AIMLAPI_BREAKER_FAILURES="2",
            AIMLAPI_BREAKER_COOLDOWN="3",
            HOST="127.0.0.1",
            PORT=str(self.port),
            WEB_CONCURRENCY="1",
            GUNICORN_THREADS="16",
            XDG_RUNTIME_DIR=str(tmp),
        )
        env.update(overrides)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own command
                [str(GUNICORN), "chatsite.wsgi", "--config", "gunicorn.conf.py"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_until_up(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"gunicorn exited:\n{self.log.read_text()[-3000:]}"
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz", headers={"Connection": "close"})
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        pytest.fail(f"gunicorn did not answer on port {self.port}:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


class Browser:
    """Cookies and the CSRF header, on http.client, against whichever server is given."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def request(self, server: Server, method: str, path: str, form: dict | None = None, **headers):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        # One connection per request, closed by the server after it: nothing idles in a worker.
        cookies = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        headers = {"Cookie": cookies, "Connection": "close", **headers}
        body = None
        if form is not None:
            body = urlencode(form)
            origin = f"http://127.0.0.1:{server.port}"
            headers.update({"Content-Type": "application/x-www-form-urlencoded", "Origin": origin, "Referer": origin})
            headers["X-CSRFToken"] = self.cookies.get("csrftoken", "")
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key.strip()] = rest.split(";", 1)[0]
        return response

    def sign_in(self, server: Server, username: str) -> None:
        page = self.request(server, "GET", "/accounts/login/").read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = {"csrfmiddlewaretoken": token, "username": username, "password": PASSWORD}
        response = self.request(server, "POST", "/accounts/login/", form)
        assert response.status == 302, response.read()[:500]

    def follow(self, server: Server, conversation_id: int, message_id: int, received: list, started: threading.Event):
        """Read a reply's SSE stream to its end: the text of each `text` event, then ("done", html)."""
        path = f"/c/{conversation_id}/messages/{message_id}/stream/"
        response = self.request(server, "GET", path, Accept="text/event-stream")
        assert response.status == 200
        started.set()
        # Line by line, as each event arrives: the test times when every piece came.
        for event in sse.parse(response):
            if event.event == "text":
                received.append(("text", json.loads(event.data), time.monotonic()))
            elif event.event == "done":
                received.append(("done", json.loads(event.data)["html"], time.monotonic()))
                return


@pytest.fixture
def alice(alice):
    # The servers hash passwords as in production; the suite's fast MD5 hasher is unknown there.
    hasher = PBKDF2PasswordHasher()
    alice.password = hasher.encode(PASSWORD, hasher.salt())
    alice.save(update_fields=["password"])
    return alice


@pytest.fixture(scope="module")
def _server_pair(tmp_path_factory, _upstream_server, django_db_setup, django_db_blocker):
    if not GUNICORN.exists():
        pytest.skip(f"{GUNICORN} is missing")
    tmp = tmp_path_factory.mktemp("servers")
    with django_db_blocker.unblock():
        database_url = _database_url()
    pair = [Server(name, tmp, _upstream_server.base_url, database_url) for name in ("a", "b")]
    try:
        for server in pair:
            server.wait_until_up()
        yield pair
    finally:
        for server in pair:
            server.stop()


@pytest.fixture
def servers(_server_pair, upstream):
    return _server_pair


def _start_reply(browser: Browser, server: Server, content: str) -> Message:
    response = browser.request(server, "POST", "/c/", {"content": content, "client_id": str(uuid.uuid4())})
    assert response.status == 302, response.read()[:500]
    return Message.objects.filter(role="assistant", parent__content=content).get()


def _follow_in_background(browser, server, reply):
    received, started = [], threading.Event()
    thread = threading.Thread(
        target=browser.follow, args=(server, reply.conversation_id, reply.pk, received, started), daemon=True
    )
    thread.start()
    assert started.wait(10), "the stream did not open"
    return thread, received


def _text(received) -> str:
    return "".join(data for kind, data, _ in received if kind == "text")


def test_a_reply_started_on_one_process_is_followed_in_full_from_another(servers, upstream, alice):
    a, b = servers
    browser = Browser()
    browser.sign_in(a, "alice")  # the session made by A is honoured by B
    upstream.stream(WORDS, delay=0.01)

    reply = _start_reply(browser, a, "Count for me")
    thread, received = _follow_in_background(browser, b, reply)
    thread.join(30)

    assert not thread.is_alive(), "B's stream did not end"
    reply.refresh_from_db()
    assert (reply.status, reply.content) == ("complete", WORDS)
    assert _text(received) == WORDS, "the text followed from B is the whole reply, each piece once"
    assert received[-1][0] == "done" and "word59" in received[-1][1]


def test_stop_pressed_on_another_process_stops_the_reply(servers, upstream, alice):
    a, b = servers
    browser = Browser()
    browser.sign_in(a, "alice")
    upstream.stream(WORDS, delay=0.1)  # 6 s in all, if nothing stops it

    reply = _start_reply(browser, a, "Count slowly")
    thread, received = _follow_in_background(browser, b, reply)
    deadline = time.monotonic() + 10
    while len(_text(received).split()) < 3:
        assert time.monotonic() < deadline, "no text reached B"
        time.sleep(0.02)
    pressed = time.monotonic()
    stop = browser.request(
        b, "POST", f"/c/{reply.conversation_id}/messages/{reply.pk}/stop/", {}, **{"HX-Request": "true"}
    )
    assert stop.status == 204
    thread.join(10)

    assert not thread.is_alive(), "B's stream did not end after Stop"
    assert received[-1][2] - pressed < 1.5, "Stop reached the generating process within a few save intervals"
    reply.refresh_from_db()
    assert reply.status == "stopped"
    assert reply.content and WORDS.startswith(reply.content) and reply.content != WORDS
    assert _text(received) == reply.content, "B followed exactly the text that was kept"
    requests_before = len(upstream.completion_requests)
    time.sleep(0.3)
    assert len(upstream.completion_requests) == requests_before, "nothing was asked again"


def _finished(reply: Message, timeout: float = 10.0) -> Message:
    deadline = time.monotonic() + timeout
    while True:
        reply.refresh_from_db()
        if reply.status not in Message.IN_PROGRESS:
            return reply
        assert time.monotonic() < deadline, f"reply {reply.pk} is still {reply.status}"
        time.sleep(0.05)


def test_with_redis_the_breaker_opened_by_one_process_fails_fast_on_another(servers, upstream, alice):
    if not os.environ.get("REDIS_URL"):
        pytest.skip("without REDIS_URL each process has its own breaker (make test-scaleout runs this)")
    a, b = servers
    browser = Browser()
    browser.sign_in(a, "alice")
    for attempt in range(2):
        upstream.fail(503)
        failed = _finished(_start_reply(browser, a, f"Failing {attempt}"))
        assert failed.error_code == "server_error"
    requests_before = len(upstream.completion_requests)

    fast = _finished(_start_reply(browser, b, "Anyone there?"))

    assert fast.error_code == "unavailable", "B knows A's failures through Redis"
    assert " is unavailable; try again in " in fast.error
    assert len(upstream.completion_requests) == requests_before, "B did not ask the upstream"
    # Closed again for the tests after this one: the servers' cache keys have no prefix (version 1).
    redis = caches["default"]._cache.get_client(write=True)
    redis.delete(*(f":1:{breaker.key(upstream.base_url, part)}" for part in ("failures", "tripped", "open-until")))
