"""The circuit breaker: after several failures in a row, calls fail at once for a cool-down.

Its state is in Django's cache: shared by every process and host when REDIS_URL is set, per
process otherwise. Keys are per base URL, so a second upstream is not affected by the first.
When it opens is read from `common.clock`, so a test moves through a cool-down without waiting;
the cache's timeouts only clean up.
"""

import hashlib
import logging
import math

from django.core.cache import cache

from common import clock, counters

from .config import UpstreamConfig
from .errors import UpstreamError

logger = logging.getLogger(__name__)

# Failures that count towards opening the breaker: the service is not answering properly.
_COUNTED_CODES = {"connect_timeout", "connection", "request", "timeout"}


def key(base_url: str, name: str) -> str:
    """The cache key of one part of a breaker's state: failures, tripped or open-until."""
    digest = hashlib.sha256(base_url.encode()).hexdigest()[:16]
    return f"chatsite:upstream-breaker:{digest}:{name}"


def check(config: UpstreamConfig) -> None:
    """Fail at once, without a request, while the breaker of this upstream is open."""
    if not config.breaker_failures:
        return
    until = cache.get(key(config.base_url, "open-until"))
    left = (until or 0) - clock.time()
    if left > 0:
        raise UpstreamError("unavailable", retry_after=math.ceil(left))


def failure(config: UpstreamConfig, error: UpstreamError) -> None:
    if not config.breaker_failures:
        return
    if error.code not in _COUNTED_CODES and not (error.status and error.status >= 500):
        return
    failures = key(config.base_url, "failures")
    # The window starts at the first failure; a success in between starts counting again.
    count = counters.count(failures, timeout=config.breaker_window)
    # Once it has opened, the first failure after the cool-down opens it again (half-open).
    tripped = cache.get(key(config.base_url, "tripped"))
    if count >= config.breaker_failures or tripped:
        cooldown = config.breaker_cooldown
        cache.set(key(config.base_url, "open-until"), clock.time() + cooldown, cooldown)
        cache.set(key(config.base_url, "tripped"), 1, timeout=cooldown + config.breaker_window)
        cache.delete(failures)
        logger.warning("upstream %s: %d failures in a row, failing fast for %g s", config.host, count, cooldown)


def success(config: UpstreamConfig) -> None:
    # Always, not only where this process saw the failures: with Redis they may be another's.
    if config.breaker_failures:
        cache.delete_many([key(config.base_url, "failures"), key(config.base_url, "tripped")])
