"""Off-boarding across two gunicorn processes on PostgreSQL and Redis (make test-scaleout): a person
signed in on A, deactivated through B's admin, is refused at their next request on A, and the reply
A was writing for them stops there, its text kept.

Skipped without REDIS_URL, as the bus's process tests are.
"""

import os
import time

import pytest
import redis
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection

from conversations.models import Message
from tests.conftest import PASSWORD
from tests.test_scaleout import WORDS, Browser, Server, _database_url, _start_reply

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="sessions in Redis need REDIS_URL (make test-scaleout)"),
]


def _hashed_as_in_production(user):
    # The servers hash passwords as in production; the suite's fast MD5 hasher is unknown there.
    hasher = PBKDF2PasswordHasher()
    user.password = hasher.encode(PASSWORD, hasher.salt())
    user.save(update_fields=["password"])
    return user


@pytest.fixture
def pair(tmp_path, upstream, alice, admin_user):
    if connection.vendor != "postgresql":
        pytest.skip("two processes with Redis run on PostgreSQL (make test-scaleout)")
    _hashed_as_in_production(alice)
    _hashed_as_in_production(admin_user)
    # The servers count sign-in failures without the suite's key prefix: a failed run must not
    # lock the next one out.
    servers_cache = redis.Redis.from_url(os.environ["REDIS_URL"])
    stale = list(servers_cache.scan_iter(match=":1:login-failures:*", count=1000))
    if stale:
        servers_cache.delete(*stale)
    servers = [Server(name, tmp_path, upstream.base_url, _database_url()) for name in ("a", "b")]
    try:
        for server in servers:
            server.wait_until_up()
        yield servers
    finally:
        for server in servers:
            server.stop()


def _wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_deactivating_on_b_refuses_the_next_request_on_a_and_stops_its_reply(pair, upstream, alice):
    a, b = pair
    person = Browser()
    person.sign_in(a, "alice")
    assert person.request(a, "GET", "/").status == 200
    upstream.stream(WORDS, delay=0.1)  # 6 s if nothing stops it
    reply = _start_reply(person, a, "Count slowly")
    _wait_for(lambda: Message.objects.get(pk=reply.pk).content)  # A saves every 100 ms

    admin = Browser()
    admin.sign_in(b, "root")
    action = {"action": "deactivate_users", "_selected_action": str(alice.pk), "index": "0"}
    deactivated = admin.request(b, "POST", "/admin/auth/user/", action)
    assert deactivated.status == 302, deactivated.read()[:2000]

    refused = person.request(a, "GET", "/")
    assert refused.status == 302 and refused.getheader("Location").startswith("/accounts/login/")
    assert person.request(a, "GET", f"/c/{reply.conversation_id}/").status == 302
    _wait_for(lambda: Message.objects.get(pk=reply.pk).status not in Message.IN_PROGRESS)
    reply.refresh_from_db()
    assert reply.status == Message.Status.STOPPED
    assert reply.content and WORDS.startswith(reply.content) and reply.content != WORDS
    assert admin.request(b, "GET", "/admin/").status == 200, "the admin's own session goes on"
