"""Two gunicorn processes with the Redis bus between them (make test-scaleout): a reply generated
on A and followed from B arrives piece by piece, Stop on B closes A's upstream connection at
once, a killed A leaves the reply interrupted with Retry within seconds, a SIGTERM'd A finishes
it, and a bus that goes away mid-reply costs the reply nothing.

Each test starts its own pair, since several of them end A. Skipped without REDIS_URL.
"""

import os
import shutil
import signal
import subprocess
import time

import pytest
import redis
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection

from conversations.models import Message
from tests.conftest import PASSWORD
from tests.test_scaleout import (
    WORDS,
    Browser,
    Server,
    _database_url,
    _follow_in_background,
    _free_port,
    _start_reply,
    _text,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="the bus needs REDIS_URL (make test-scaleout)"),
]


@pytest.fixture
def alice(alice):
    # The servers hash passwords as in production; the suite's fast MD5 hasher is unknown there.
    hasher = PBKDF2PasswordHasher()
    alice.password = hasher.encode(PASSWORD, hasher.salt())
    alice.save(update_fields=["password"])
    return alice


@pytest.fixture
def start_pair(tmp_path, upstream, alice):
    if connection.vendor != "postgresql":
        pytest.skip("two processes with the bus run on PostgreSQL (make test-scaleout)")
    started = []
    # The servers count sign-in failures and rates without the suite's key prefix: a failed
    # run must not lock the next one out.
    servers_cache = redis.Redis.from_url(os.environ["REDIS_URL"])
    for pattern in (":1:login-failures:*", ":1:chatsite:rate:*"):
        stale = list(servers_cache.scan_iter(match=pattern, count=1000))
        if stale:
            servers_cache.delete(*stale)

    def start(**overrides):
        pair = [Server(name, tmp_path, upstream.base_url, _database_url(), **overrides) for name in ("a", "b")]
        started.extend(pair)
        for server in pair:
            server.wait_until_up()
        browser = Browser()
        browser.sign_in(pair[0], "alice")
        return (*pair, browser)

    yield start
    for server in started:
        server.stop()


def _words_in(received) -> list[int]:
    return [len(data.split()) for kind, data, _ in received if kind == "text"]


def _wait_for_words(received, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(_text(received).split()) < count:
        assert time.monotonic() < deadline, f"fewer than {count} words arrived"
        time.sleep(0.01)


def test_a_reply_followed_from_another_process_arrives_piece_by_piece(start_pair, upstream):
    a, b, browser = start_pair()
    upstream.stream(WORDS, delay=0.02)  # 60 pieces, 1.2 s; the database is saved every 100 ms

    reply = _start_reply(browser, a, "Count for me")
    on_a = _follow_in_background(browser, a, reply)
    on_b = _follow_in_background(browser, b, reply)
    for thread, _ in (on_a, on_b):
        thread.join(30)

    steps_a, steps_b = _words_in(on_a[1]), _words_in(on_b[1])
    assert _text(on_b[1]) == WORDS, "each piece once, in order"
    assert len(steps_b) >= min(len(steps_a), 60) - 3, f"B showed {len(steps_b)} steps, A {len(steps_a)}"
    assert max(steps_b) <= 3, f"the biggest lump on B held {max(steps_b)} words"
    assert on_b[1][-1][0] == "done" and "word59" in on_b[1][-1][1], "done carries the stored HTML"


def test_stop_on_another_process_closes_the_upstream_connection_within_100_ms(start_pair, upstream):
    a, b, browser = start_pair()
    upstream.stream(WORDS, delay=0.02)

    reply = _start_reply(browser, a, "Count")
    thread, received = _follow_in_background(browser, b, reply)
    _wait_for_words(received, 5)
    pressed = time.monotonic()
    path = f"/c/{reply.conversation_id}/messages/{reply.pk}/stop/"
    stop = browser.request(b, "POST", path, {}, **{"HX-Request": "true"})
    assert stop.status == 204
    thread.join(10)

    assert upstream.disconnects, "the upstream saw its client go away"
    assert upstream.disconnects[0] - pressed < 0.1, f"{(upstream.disconnects[0] - pressed) * 1000:.0f} ms"
    reply.refresh_from_db()
    assert reply.status == "stopped" and reply.content and WORDS.startswith(reply.content)
    assert _text(received) == reply.content


def test_a_killed_process_leaves_its_reply_interrupted_with_retry_seen_from_another(start_pair, upstream):
    a, b, browser = start_pair()
    upstream.stream(WORDS, delay=0.1)  # 6 s if nothing ends it

    reply = _start_reply(browser, a, "Count slowly")
    thread, received = _follow_in_background(browser, b, reply)
    _wait_for_words(received, 5)
    os.killpg(a.process.pid, signal.SIGKILL)
    killed = time.monotonic()
    thread.join(15)

    assert not thread.is_alive(), "B's stream did not end"
    assert received[-1][0] == "done" and received[-1][2] - killed < 10, "ended within ~10 s"
    reply.refresh_from_db()
    assert (reply.status, reply.error_code) == ("interrupted", "interrupted")
    # Its text as of A's last save (every 100 ms here): what B saw, less at most the last save's worth.
    assert len(reply.content.split()) >= 3 and _text(received).startswith(reply.content), "its text is kept"
    assert "Retry" in received[-1][1], "the done event offers Retry"


def test_sigterm_lets_a_process_finish_its_reply_and_take_no_new_one(start_pair, upstream):
    a, b, browser = start_pair()
    upstream.stream(WORDS, delay=0.03)

    reply = _start_reply(browser, a, "Count on")
    thread, received = _follow_in_background(browser, b, reply)
    _wait_for_words(received, 5)
    os.kill(a.process.pid, signal.SIGTERM)  # the master: gunicorn's graceful shutdown
    time.sleep(0.3)
    with pytest.raises(OSError):
        browser.request(a, "GET", "/healthz")
    thread.join(15)

    reply.refresh_from_db()
    assert (reply.status, reply.content) == ("complete", WORDS)
    assert _text(received) == WORDS and received[-1][0] == "done"
    a.process.wait(15)
    assert "waiting for 1 replies being written before exiting" in a.log.read_text()
    assert "replies left unfinished at exit: 0" in a.log.read_text()


def test_a_bus_that_goes_away_mid_reply_costs_the_reply_nothing(start_pair, upstream, tmp_path):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed: no private Redis to stop mid-reply")
    port = _free_port()
    bus_redis = subprocess.Popen(  # noqa: S603 - our own command
        [server, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 5
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "the private Redis did not start"
                time.sleep(0.05)
        a, b, browser = start_pair(CHAT_BUS_REDIS_URL=f"redis://127.0.0.1:{port}/0")
        upstream.stream(WORDS, delay=0.03)

        reply = _start_reply(browser, a, "Count through it")
        thread, received = _follow_in_background(browser, b, reply)
        _wait_for_words(received, 5)
        bus_redis.kill()
        thread.join(20)
    finally:
        bus_redis.kill()
        bus_redis.wait(5)

    reply.refresh_from_db()
    assert (reply.status, reply.content) == ("complete", WORDS)
    assert _text(received) == WORDS, "B went on from the database"
    assert Message.objects.get(pk=reply.pk).content_html
    assert a.log.read_text().count("the Redis bus is unreachable") == 1, "A's log says so once"
