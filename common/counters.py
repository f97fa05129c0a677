"""Counters and slots in Django's cache: shared by every process and host when the cache is Redis."""

import secrets
import time

from django.core.cache import cache


def count(key: str, *, timeout: float) -> int:
    """Add one to the counter `key`, created with `timeout` seconds to live when missing, and
    return its new value. `add` and `incr` are atomic in Redis and in the local-memory cache."""
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # it expired between add and incr
        cache.set(key, 1, timeout=timeout)
        return 1


class Lease:
    """One slot of a limited kind, held in the cache until released or, unless renewed, for `ttl` seconds.

    Each slot is its own key taken with the atomic `add`, not a shared number added to and taken
    from: a process that dies holding slots cannot leave a count too high for ever, because
    each slot it held expires on its own once nobody renews it.
    """

    def __init__(self, key: str, token: str, ttl: float):
        self.key, self._token, self._ttl = key, token, ttl
        self._renewed = time.monotonic()
        self._released = False

    @property
    def due(self) -> float:
        """When (time.monotonic) `renew` next writes to the cache."""
        return self._renewed + self._ttl / 3

    def renew(self) -> None:
        """Keep the slot for another `ttl` seconds (a cache write at most every third of it)."""
        if not self._released and time.monotonic() >= self.due:
            cache.touch(self.key, self._ttl)
            self._renewed = time.monotonic()

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        if cache.get(self.key) == self._token:  # not a slot taken by another after ours expired
            cache.delete(self.key)


def lease(name: str, *, limit: int, ttl: float) -> Lease | None:
    """A free one of the `limit` slots called `name`, or None when all are held."""
    token = secrets.token_hex(8)
    for slot in range(limit):
        key = f"{name}:{slot}"
        if cache.add(key, token, timeout=ttl):
            return Lease(key, token, ttl)
    return None


class Holding:
    """Iterates `iterable` while holding `leases`: renewed at each item, released when it ends
    or is closed. A WSGI server closes a response's iterable however it ends, a client gone
    away included, so a streamed response made of one gives its slots back."""

    def __init__(self, iterable, leases: list[Lease]):
        self._iterable, self._iterator, self._leases = iterable, iter(iterable), leases
        # A streamed reply gives an item per word: the leases are looked at only once one is due.
        self._due = min((held.due for held in leases), default=float("inf"))

    def __iter__(self):
        return self

    def __next__(self):
        try:
            item = next(self._iterator)
        except BaseException:
            self.close()
            raise
        if time.monotonic() >= self._due:
            for held in self._leases:
                held.renew()
            self._due = min(held.due for held in self._leases)
        return item

    def close(self) -> None:
        try:
            if hasattr(self._iterable, "close"):
                self._iterable.close()
        finally:
            for held in self._leases:
                held.release()
