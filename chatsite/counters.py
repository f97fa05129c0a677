"""A counter in Django's cache: shared by every process and host when the cache is Redis."""

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
