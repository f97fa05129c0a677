"""common/bus.py and conversations/generation/relay.py against a real Redis (TEST_REDIS_URL,
redis://127.0.0.1:6379/3 by default; skipped with the reason when none answers)."""

import os
import threading
import time
import uuid
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from common.bus import STREAM_MAXLEN, Bus, BusUnavailable
from conversations.generation import relay
from conversations.models import Conversation, Message

REDIS_URL = os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/3"


@pytest.fixture
def bus():
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError as error:
        pytest.skip(f"no Redis at {REDIS_URL} ({error})")
    bus = Bus(REDIS_URL, prefix=f"test-bus:{uuid.uuid4().hex}")
    yield bus
    keys = list(bus.client.scan_iter(f"{bus.prefix}:*"))
    if keys:
        bus.client.delete(*keys)


def test_it_reads_a_stream_from_the_start_and_after_an_entry(bus):
    bus.append(7, {"s": "0", "t": "Hel"})
    bus.append(7, {"s": "3", "t": "lo"})

    entries = bus.read(7, block_ms=10)
    later = bus.read(7, entries[0][0], block_ms=10)

    assert [fields for _, fields in entries] == [{"s": "0", "t": "Hel"}, {"s": "3", "t": "lo"}]
    assert [fields for _, fields in later] == [{"s": "3", "t": "lo"}]
    assert bus.read(7, entries[-1][0], block_ms=10) == [], "nothing after the last entry"


def test_a_blocked_reader_wakes_as_soon_as_an_entry_is_added(bus):
    threading.Timer(0.2, bus.append, args=(8, {"t": "now"})).start()
    started = time.monotonic()

    entries = bus.read(8, block_ms=5000)

    waited = time.monotonic() - started
    assert [fields for _, fields in entries] == [{"t": "now"}]
    assert 0.15 < waited < 0.5, f"woke {waited:.3f} s after the read began"


def test_streams_are_bounded_and_expire(bus):
    pipe = bus.client.pipeline(transaction=False)
    for i in range(STREAM_MAXLEN + 500):
        pipe.xadd(bus.stream_key(9), {"i": str(i)})
    pipe.execute()
    bus.append(9, {"i": "last"}, ttl=60)

    assert bus.client.xlen(bus.stream_key(9)) < STREAM_MAXLEN + 500, "MAXLEN trims the oldest entries"
    assert 0 < bus.client.ttl(bus.stream_key(9)) <= 60


def test_reset_drops_an_earlier_writers_entries(bus):
    bus.append(10, {"t": "old attempt"})

    bus.reset(10)

    assert bus.read(10, block_ms=10) == []


def test_a_control_message_reaches_every_listener(bus):
    heard, ready = [], threading.Event()
    threading.Thread(target=bus.listen, args=(heard.append,), kwargs={"ready": ready}, daemon=True).start()
    assert ready.wait(5)
    time.sleep(0.05)  # subscribe() has been sent; let Redis confirm it

    bus.send("stop 12")

    deadline = time.monotonic() + 2
    while not heard and time.monotonic() < deadline:
        time.sleep(0.01)
    assert heard == ["stop 12"]


def test_a_lease_is_held_until_it_runs_out_or_is_released(bus):
    bus.renew([1, 2], ttl=0.3)
    bus.renew([3], ttl=30)

    assert bus.held(1) and bus.held(3)
    assert bus.expired() == []
    time.sleep(0.4)
    assert not bus.held(1)
    assert sorted(bus.expired()) == [1, 2]
    bus.release(1)
    assert bus.expired() == [2]
    assert bus.held(3)
    assert bus.client.ttl(bus.leases) > 0, "the lease set expires too"


def test_an_unreachable_redis_is_one_error_type():
    nowhere = Bus("redis://127.0.0.1:1/0")
    with pytest.raises(BusUnavailable):
        nowhere.append(1, {"t": "x"})
    with pytest.raises(BusUnavailable):
        nowhere.held(1)


# --- relay: what chatsite does with the bus -------------------------------------------------
@pytest.fixture
def reply(alice):
    chat = Conversation.objects.create(owner=alice, model="mistralai/mistral-tiny")
    question = Message.objects.create(conversation=chat, role="user", content="Hi")
    return Message.objects.create(
        conversation=chat, role="assistant", status="streaming", content="Half a re", parent=question
    )


def _age(message: Message, seconds: float) -> None:
    Message.objects.filter(pk=message.pk).update(updated_at=timezone.now() - timedelta(seconds=seconds))


@pytest.mark.django_db
def test_an_abandoned_reply_is_marked_interrupted_once_with_its_text(reply):
    _age(reply, relay.LEASE_SECONDS + 1)

    marked = [relay.abandon(reply.pk), relay.abandon(reply.pk)]

    reply.refresh_from_db()
    assert marked == [True, False], "whoever notices second finds it done"
    assert (reply.status, reply.content, reply.error_code) == ("interrupted", "Half a re", "interrupted")
    assert "press Retry" in reply.error and reply.can_retry


@pytest.mark.django_db
def test_a_reply_written_within_a_lease_is_not_abandoned(reply):
    # Its process lost Redis but still saves it: the database says it is alive.
    assert relay.abandon(reply.pk) is False
    reply.refresh_from_db()
    assert reply.status == "streaming"


@pytest.mark.django_db
def test_following_over_the_bus_yields_each_piece_from_the_offset(reply, bus, settings, monkeypatch):
    settings.CHAT_BUS_REDIS_URL = REDIS_URL
    monkeypatch.setattr(relay, "_bus", bus)
    bus.renew([reply.pk], ttl=30)
    for start, text in [(0, "Hel"), (3, "lo "), (6, "world")]:
        bus.append(reply.pk, {"s": str(start), "t": text})
    bus.append(reply.pk, {"end": "1"})

    # A reconnect at 4 repeats nothing; the pieces already there arrive in one write.
    assert list(relay.follow(reply.pk, 4)) == [("o world", 11)]


@pytest.mark.django_db
def test_following_over_the_bus_yields_pieces_one_by_one_as_they_arrive(reply, bus, settings, monkeypatch):
    settings.CHAT_BUS_REDIS_URL = REDIS_URL
    monkeypatch.setattr(relay, "_bus", bus)
    bus.renew([reply.pk], ttl=30)
    follower = relay.follow(reply.pk, 0)
    received = []
    for start, text in [(0, "Hel"), (3, "lo")]:
        bus.append(reply.pk, {"s": str(start), "t": text})
        received.append(next(follower))
    bus.append(reply.pk, {"w": "Waiting 2 s"})
    received.append(next(follower))
    bus.append(reply.pk, {"end": "1"})

    assert received == [("Hel", 3), ("lo", 5), "Waiting 2 s"]
    assert list(follower) == []


@pytest.mark.django_db
def test_following_a_trimmed_stream_hands_over_to_the_database(reply, bus, settings, monkeypatch):
    settings.CHAT_BUS_REDIS_URL = REDIS_URL
    monkeypatch.setattr(relay, "_bus", bus)
    bus.renew([reply.pk], ttl=30)
    bus.append(reply.pk, {"s": "6", "t": "world"})  # what came before was trimmed

    follower = relay.follow(reply.pk, 0)
    with pytest.raises(StopIteration) as ended:
        next(follower)

    assert ended.value.value == 0, "the text from offset 0 is read from the database"


@pytest.mark.django_db
def test_following_a_reply_whose_lease_ran_out_marks_it_interrupted(reply, bus, settings, monkeypatch):
    settings.CHAT_BUS_REDIS_URL = REDIS_URL
    monkeypatch.setattr(relay, "_bus", bus)
    _age(reply, relay.LEASE_SECONDS + 1)

    assert list(relay.follow(reply.pk, 0)) == []

    reply.refresh_from_db()
    assert reply.status == "interrupted"


def test_a_publisher_pushes_the_streams_expiry_back_once_a_minute_not_with_every_piece(bus, settings, monkeypatch):
    settings.CHAT_BUS_REDIS_URL = REDIS_URL
    monkeypatch.setattr(relay, "_bus", bus)
    publisher = relay.Publisher(11)
    key = bus.stream_key(11)

    publisher.piece(0, "Hel")
    assert bus.client.ttl(key) > 3000, "the first piece sets the stream's expiry"
    bus.client.expire(key, 500)
    publisher.piece(3, "lo")
    assert bus.client.ttl(key) <= 500, "a piece within the minute sends the XADD alone"

    monkeypatch.setattr(relay, "EXPIRY_PUSH_SECONDS", 0.0)
    publisher.piece(5, "!")
    assert bus.client.ttl(key) > 3000, "after the minute the expiry is pushed back again"
    publisher.end()
    assert bus.client.ttl(key) <= 60, "a finished stream keeps only its short expiry"
    assert [fields.get("t") for _, fields in bus.read(11, block_ms=10)] == ["Hel", "lo", "!", None]
