"""Abuse of the site by a signed-in person or a stranger: redirects to other sites, sign-in
bursts, stream floods and bodies that are not text."""

import http.client
import json
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db.models import Value
from django.db.models.functions import Concat

from conversations.generation import slots
from conversations.models import Conversation, Message
from tests.conftest import PASSWORD, clear_cache, sse_events
from tests.test_scaleout import GUNICORN, Browser, Server, _database_url

pytestmark = pytest.mark.django_db


# --- Redirects stay on this site ---------------------------------------------------------


@pytest.fixture
def conversation(alice):
    return Conversation.objects.create(owner=alice, title="Mine")


@pytest.mark.parametrize("action, field", [("pin", "pinned"), ("archive", "archived")])
@pytest.mark.parametrize(
    "elsewhere",
    ["https://elsewhere.example/", "//elsewhere.example/", "/\\elsewhere.example/", "http:elsewhere.example"],
)
def test_it_does_not_redirect_to_another_site(client_alice, conversation, action, field, elsewhere):
    response = client_alice.post(f"/c/{conversation.pk}/{action}/", {field: "1", "next": elsewhere})

    assert response.status_code == 302
    assert response["Location"] == conversation.get_absolute_url()


def test_it_follows_a_next_on_this_site(client_alice, conversation):
    response = client_alice.post(f"/c/{conversation.pk}/pin/", {"pinned": "1", "next": "/?archived=1"})

    assert response.status_code == 302
    assert response["Location"] == "/?archived=1"
    conversation.refresh_from_db()
    assert conversation.pinned_at is not None


# --- A burst of sign-in guesses ----------------------------------------------------------

LIMIT = 3


def _use_redis(settings) -> None:
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis is not reachable at {url}: {error}")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": f"chatsite-test-abuse-{uuid.uuid4().hex}",
        }
    }


@pytest.fixture(params=["locmem", "redis"])
def shared_cache(request, settings):
    """The cache the counts are kept in: this process's memory, or Redis as with REDIS_URL."""
    if request.param == "redis":
        _use_redis(settings)
    yield request.param
    clear_cache()


@pytest.fixture
def redis_cache(settings):
    _use_redis(settings)
    yield
    clear_cache()


def _signed_out_session(base_url: str) -> tuple[requests.Session, str]:
    session = requests.Session()
    session.get(f"{base_url}/accounts/login/", timeout=10).raise_for_status()
    return session, session.cookies["csrftoken"]


def _at_once(base_url: str, passwords: list[str]) -> list[requests.Response]:
    """Each password from its own connection, all released together (as a script would)."""
    sessions = [_signed_out_session(base_url) for _ in passwords]
    start = threading.Barrier(len(passwords))

    def guess(session_and_token, password):
        session, token = session_and_token
        form = {"username": "alice", "password": password, "csrfmiddlewaretoken": token}
        start.wait(timeout=10)
        return session.post(f"{base_url}/accounts/login/", data=form, allow_redirects=False, timeout=30)

    with ThreadPoolExecutor(max_workers=len(passwords)) as pool:
        return list(pool.map(guess, sessions, passwords))


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_guesses_gets_no_more_checks_than_the_limit(live_server, alice, settings, shared_cache):
    settings.LOGIN_FAILURES_PER_ACCOUNT = LIMIT
    settings.LOGIN_FAILURES_PER_IP = 1000  # the account's limit is the one under test

    responses = _at_once(live_server.url, [f"wrong-{n}" for n in range(30)])

    checked = [r for r in responses if r.status_code == 200 and "Please enter a correct" in r.text]
    refused = [r for r in responses if r.status_code == 429 and "Too many failed sign-in attempts" in r.text]
    assert (len(checked), len(refused)) == (LIMIT, 30 - LIMIT)
    # The right password after the burst is refused too: the account is locked.
    session, token = _signed_out_session(live_server.url)
    form = {"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": token}
    assert session.post(f"{live_server.url}/accounts/login/", data=form, allow_redirects=False).status_code == 429


# --- Open streams per person and per reply ------------------------------------------------


@pytest.fixture
def caps(settings):
    settings.CHAT_STREAMS_PER_PERSON = 3
    settings.CHAT_STREAMS_PER_REPLY = 2
    return settings


def _reply_being_written(owner, status=Message.Status.STREAMING) -> Message:
    conversation = Conversation.objects.create(owner=owner, title="Long one")
    question = Message.objects.create(conversation=conversation, role=Message.Role.USER, content="Go on")
    return Message.objects.create(
        conversation=conversation, role=Message.Role.ASSISTANT, parent=question, status=status, content="Once"
    )


def _open_stream(client, reply):
    return client.get(f"/c/{reply.conversation_id}/messages/{reply.pk}/stream/")


@pytest.mark.django_db(transaction=True)
def test_a_reply_open_in_more_tabs_than_the_cap_gets_429_with_the_reason(client_alice, alice, caps, shared_cache):
    reply = _reply_being_written(alice)
    first, second = _open_stream(client_alice, reply), _open_stream(client_alice, reply)
    assert (first.status_code, second.status_code) == (200, 200)

    third = _open_stream(client_alice, reply)

    assert third.status_code == 429
    assert "This reply is open in 2 tabs already" in third.content.decode()
    first.close()  # the tab went away: the server closes its stream
    assert _open_stream(client_alice, reply).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_person_following_more_replies_than_the_cap_gets_429_with_the_reason(
    client_alice, client_bob, alice, bob, caps, shared_cache
):
    streams = [_open_stream(client_alice, _reply_being_written(alice)) for _ in range(3)]
    assert [stream.status_code for stream in streams] == [200, 200, 200]

    refused = _open_stream(client_alice, _reply_being_written(alice))

    assert refused.status_code == 429
    assert "You have 3 replies open already" in refused.content.decode()
    assert _open_stream(client_bob, _reply_being_written(bob)).status_code == 200  # another person's own cap
    streams[0].close()
    assert _open_stream(client_alice, _reply_being_written(alice)).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_stream_that_ends_gives_its_slots_back(client_alice, alice, caps, shared_cache):
    reply = _reply_being_written(alice, status=Message.Status.COMPLETE)

    for _ in range(5):  # more than either cap, one after another
        events = sse_events(_open_stream(client_alice, reply))
        assert events[-1][0] == "done"

    assert _open_stream(client_alice, reply).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_the_slots_of_a_process_that_died_expire(client_alice, alice, caps, shared_cache, monkeypatch):
    monkeypatch.setattr(slots, "STREAM_SLOT_SECONDS", 1)
    reply = _reply_being_written(alice)
    abandoned = [_open_stream(client_alice, reply) for _ in range(2)]  # never closed: the process "died"
    assert _open_stream(client_alice, reply).status_code == 429

    deadline = time.monotonic() + 10
    while (response := _open_stream(client_alice, reply)).status_code == 429:
        assert time.monotonic() < deadline, "the slots of the abandoned streams never came back"
        time.sleep(0.1)

    assert response.status_code == 200
    assert all(stream.status_code == 200 for stream in abandoned)


@pytest.mark.django_db(transaction=True)
def test_with_redis_every_process_sees_the_same_open_streams(client_alice, alice, caps, redis_cache, settings):
    reply = _reply_being_written(alice)
    _open_stream(client_alice, reply)
    # Another cache client stands for another gunicorn process: it sees the slot taken here.
    other_process = RedisCache(settings.CACHES["default"]["LOCATION"], {"KEY_PREFIX": caches["default"].key_prefix})

    assert other_process.get(f"streams:person:{alice.pk}:0") is not None
    assert other_process.get(f"streams:reply:{reply.pk}:0") is not None


# --- Under gunicorn: the cap keeps threads for everyone else -----------------------------

THREADS, CAP = 6, 4


@pytest.fixture
def gunicorn(tmp_path, upstream, alice, bob):
    if not GUNICORN.exists():
        pytest.skip(f"{GUNICORN} is missing")
    # The server hashes passwords as in production; the suite's fast MD5 hasher is unknown there.
    hasher = PBKDF2PasswordHasher()
    for person in (alice, bob):
        person.password = hasher.encode(PASSWORD, hasher.salt())
        person.save(update_fields=["password"])
    server = Server(
        "caps",
        tmp_path,
        upstream.base_url,
        _database_url(),
        GUNICORN_THREADS=str(THREADS),
        CHAT_STREAMS_PER_PERSON=str(CAP),
        CHAT_STREAMS_PER_REPLY=str(CAP),
    )
    try:
        server.wait_until_up()
        yield server
    finally:
        server.stop()


class RawStream:
    """A stream request on its own socket, so the test can hang up on it like a closed tab."""

    def __init__(self, server: Server, path: str, cookies: dict[str, str]):
        # Generous: gunicorn's main loop lingers up to 2 s on each connection it closed whose
        # client has not hung up yet, and accepts nothing meanwhile (see read_to_end).
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        headers = f"Host: 127.0.0.1\r\nCookie: {cookie}\r\nAccept: text/event-stream\r\nConnection: close\r\n"
        self.sock.sendall(f"GET {path} HTTP/1.1\r\n{headers}\r\n".encode())
        self.received = b""
        while b"\r\n\r\n" not in self.received:
            chunk = self.sock.recv(4096)
            assert chunk, "the server closed the connection before answering"
            self.received += chunk
        self.status = int(self.received.split(b" ", 2)[1])

    def read_to_end(self) -> str:
        """Everything the server sent until it closed; then the client closes too (gunicorn
        lingers up to 2 s on a connection whose client keeps it open, and its main loop waits
        meanwhile)."""
        while chunk := self.sock.recv(4096):
            self.received += chunk
        self.hang_up()
        return self.received.decode(errors="replace")

    def hang_up(self) -> None:
        self.sock.close()


def _timed_get(server: Server, path: str) -> tuple[int, float]:
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        return conn.getresponse().status, time.monotonic() - started
    finally:
        conn.close()


def _stream_path(reply: Message) -> str:
    return f"/c/{reply.conversation_id}/messages/{reply.pk}/stream/"


@pytest.mark.django_db(transaction=True)
def test_one_person_cannot_take_every_thread_of_the_server(gunicorn, alice):
    browser = Browser()
    browser.sign_in(gunicorn, "alice")
    replies = [_reply_being_written(alice) for _ in range(2)]
    streams = [RawStream(gunicorn, _stream_path(replies[n % 2]), browser.cookies) for n in range(CAP)]
    assert [stream.status for stream in streams] == [200] * CAP

    # As many again as the server has threads: without the cap these would take every one.
    excess = [RawStream(gunicorn, _stream_path(replies[n % 2]), browser.cookies) for n in range(THREADS)]

    assert [stream.status for stream in excess] == [429] * THREADS
    assert all(f"You have {CAP} replies open already" in stream.read_to_end() for stream in excess)
    status, seconds = _timed_get(gunicorn, "/healthz")
    assert status == 200 and seconds < 1.0, f"/healthz took {seconds:.2f} s"
    status, seconds = _timed_get(gunicorn, "/accounts/login/")
    assert status == 200 and seconds < 1.0, f"the sign-in page took {seconds:.2f} s"
    Browser().sign_in(gunicorn, "bob")

    # The replies finish: their streams end, and their slots come back.
    Message.objects.filter(pk__in=[reply.pk for reply in replies]).update(status=Message.Status.COMPLETE)
    assert all("event: done" in stream.read_to_end() for stream in streams)
    _wait_for_streams(gunicorn, [_reply_being_written(alice)], browser.cookies, CAP)


@pytest.mark.django_db(transaction=True)
def test_hanging_up_on_a_stream_gives_its_slot_back(gunicorn, alice):
    browser = Browser()
    browser.sign_in(gunicorn, "alice")
    reply = _reply_being_written(alice)
    streams = [RawStream(gunicorn, _stream_path(reply), browser.cookies) for _ in range(CAP)]
    assert [stream.status for stream in streams] == [200] * CAP
    refused = RawStream(gunicorn, _stream_path(reply), browser.cookies)
    assert refused.status == 429 and f"You have {CAP} replies open already" in refused.read_to_end()

    for stream in streams:
        stream.hang_up()

    # The server learns that a client left when it next writes to it: new text makes it write.
    _wait_for_streams(gunicorn, [reply], browser.cookies, CAP, while_waiting=lambda: _more_text(reply))


def _more_text(reply: Message) -> None:
    Message.objects.filter(pk=reply.pk).update(content=Concat("content", Value(" more")))


def _wait_for_streams(server, replies, cookies, wanted: int, while_waiting=lambda: None, timeout=15.0) -> None:
    """Open streams of `replies` until `wanted` of them are open at once (their slots are free)."""
    deadline, open_streams = time.monotonic() + timeout, []
    try:
        while len(open_streams) < wanted:
            assert time.monotonic() < deadline, f"only {len(open_streams)} of {wanted} streams could be opened again"
            stream = RawStream(server, _stream_path(replies[len(open_streams) % len(replies)]), cookies)
            if stream.status == 200:
                open_streams.append(stream)
            else:
                stream.read_to_end()
                while_waiting()
                time.sleep(0.1)
    finally:
        for stream in open_streams:
            stream.hang_up()


# --- Multipart bodies that are not text ---------------------------------------------------

BOUNDARY = "chatsite-test-boundary"
NOT_TEXT = "The form contains characters that are not valid text."


def _multipart(*parts: tuple[bytes, bytes]) -> bytes:
    """A multipart/form-data body of (headers, value) parts, byte for byte as given."""
    body = b""
    for headers, value in parts:
        body += b"--" + BOUNDARY.encode() + b"\r\n" + headers + b"\r\n\r\n" + value + b"\r\n"
    return body + b"--" + BOUNDARY.encode() + b"--\r\n"


def _field(name: bytes, value: bytes, *extra: bytes) -> tuple[bytes, bytes]:
    return b"\r\n".join([b'Content-Disposition: form-data; name="' + name + b'"', *extra]), value


def _post_multipart(client, path, *parts, htmx=True):
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    return client.post(path, _multipart(*parts), content_type=content_type, htmx=htmx)


def _message(content: bytes, *, name: bytes = b"content", extra=()) -> list[tuple[bytes, bytes]]:
    return [_field(name, content, *extra), _field(b"client_id", str(uuid.uuid4()).encode())]


@pytest.fixture
def chat(alice):
    return Conversation.objects.create(owner=alice, model="mistralai/mistral-tiny", title="Chat")


@pytest.mark.parametrize(
    "parts",
    [
        pytest.param(_message(b"caf\xe9 au lait"), id="latin-1 value"),
        pytest.param(_message(b"half \xe2\x98"), id="cut UTF-8 value"),
        pytest.param(_message(b"nul \x00 inside"), id="NUL in a value"),
        pytest.param(_message(b"hi", name=b"cont\xffent"), id="field name"),
        pytest.param(_message(b"Y2Fm6Q==", extra=[b"Content-Transfer-Encoding: base64"]), id="base64 value"),
    ],
)
def test_a_multipart_message_that_is_not_text_is_refused(client_alice, chat, upstream, parts):
    response = _post_multipart(client_alice, f"/c/{chat.pk}/messages/", *parts)

    assert response.status_code == 400
    assert response.content.decode() == NOT_TEXT
    assert not chat.messages.exists(), "nothing is stored"
    assert upstream.completion_requests == [], "nothing is sent"


def test_a_multipart_message_in_utf8_is_stored_as_typed(client_alice, chat, upstream):
    upstream.stream(["Fine."])

    response = _post_multipart(client_alice, f"/c/{chat.pk}/messages/", *_message("café ☕ \ufffd".encode()))

    assert response.status_code == 200
    assert chat.messages.get(role="user").content == "café ☕ \ufffd"  # a typed U+FFFD is text too


def _upload(name_header: bytes, content: bytes) -> tuple[bytes, bytes]:
    headers = b'Content-Disposition: form-data; name="file"; ' + name_header + b"\r\nContent-Type: application/json"
    return headers, content


@pytest.mark.parametrize(
    "name_header",
    [
        pytest.param(b'filename="caf\xe9.json"', id="raw bytes"),
        pytest.param(b"filename*=UTF-8''caf%E9.json", id="RFC 2231"),
    ],
)
def test_an_upload_whose_file_name_is_not_text_is_refused(client_alice, name_header):
    export = json.dumps({"format": "chatsite-export", "version": 1, "conversations": []}).encode()

    response = _post_multipart(client_alice, "/history/", _upload(name_header, export), htmx=False)

    assert response.status_code == 400
    assert NOT_TEXT in response.content.decode()
    assert not Conversation.objects.exists()


def test_the_contents_of_an_upload_are_the_imports_to_judge(client_alice):
    response = _post_multipart(client_alice, "/history/", _upload(b'filename="export.json"', b"\xff\xfe\x00binary"))

    assert response.status_code == 422  # the import's own reason, not the middleware's 400
    assert NOT_TEXT not in response.content.decode()


def test_an_upload_with_a_utf8_file_name_is_imported(client_alice, alice):
    export = {
        "format": "chatsite-export",
        "version": 1,
        "conversations": [{"title": "Café", "messages": [{"role": "user", "content": "Hé"}]}],
    }
    part = _upload('filename="café.json"'.encode(), json.dumps(export).encode())

    response = _post_multipart(client_alice, "/history/", part, htmx=False)

    assert response.status_code == 200, response.content.decode()[:500]
    assert Conversation.objects.get(owner=alice).title == "Café"


def test_a_multipart_value_over_the_size_limit_is_still_a_413(client_alice, chat, upstream, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096

    response = _post_multipart(client_alice, f"/c/{chat.pk}/messages/", *_message(b"x" * 5000))

    assert response.status_code == 413
    assert not chat.messages.exists()
