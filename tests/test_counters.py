"""The slots a stream holds while it is iterated (common.counters.Holding)."""

import time

from django.core.cache import cache

from common import counters


def _items(count: int, *, apart: float = 0.0):
    for item in range(count):
        if apart:
            time.sleep(apart)
        yield item


def test_it_keeps_the_slot_past_its_ttl_while_items_come():
    held = counters.lease("test-holding", limit=1, ttl=1)  # whole seconds: Redis expires in seconds
    still_held = []

    for _ in counters.Holding(_items(6, apart=0.25), [held]):
        still_held.append(cache.get(held.key) is not None)

    assert all(still_held)
    assert cache.get(held.key) is None  # given back when the iteration ended


def test_it_writes_to_the_cache_only_when_a_renewal_is_due(monkeypatch):
    held = counters.lease("test-holding", limit=1, ttl=60)
    touches = []
    monkeypatch.setattr(cache, "touch", lambda *args, **kwargs: touches.append(args))

    assert list(counters.Holding(_items(500), [held])) == list(range(500))
    assert touches == []


def test_it_gives_the_slot_back_when_closed_early():
    held = counters.lease("test-holding", limit=1, ttl=60)
    holding = counters.Holding(_items(10), [held])

    next(holding)
    holding.close()

    assert counters.lease("test-holding", limit=1, ttl=60) is not None
