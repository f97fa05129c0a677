"""Attempts before the first byte of a reply: back-off with full jitter or Retry-After, within
the turn's budget, never once the upstream has answered 200."""

import logging
import random
import threading
import time
from collections.abc import Callable

import requests

from . import breaker, session
from .config import UpstreamConfig
from .errors import UpstreamError

logger = logging.getLogger(__name__)

# Failures worth another attempt: nothing of the reply has arrived, and the cause is likely
# to pass (no connection, rate limited, a gateway or model briefly unavailable). A 500 is not
# retried: it is usually a bug that answers the same way again. A read timeout is not either:
# the upstream may still be working on the first request.
_RETRY_CODES = {"connect_timeout", "connection"}
_RETRY_STATUSES = {429, 502, 503, 504}

# Told of a wait before another attempt: (seconds, the failure that caused it); then (0, it)
# when the next attempt starts.
OnWait = Callable[[float, UpstreamError], None]


def post(
    body: dict, config: UpstreamConfig, *, stream: bool, stop: threading.Event | None, on_wait: OnWait | None = None
) -> requests.Response:
    """`session.post`, tried again with exponential back-off and full jitter (or after
    Retry-After) while the failure is worth retrying, attempts are left and the turn's budget allows it."""
    deadline = time.monotonic() + config.turn_budget if config.turn_budget else None
    attempt = 0
    while True:
        breaker.check(config)
        timeout = (config.connect_timeout, config.read_timeout)
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UpstreamError("budget", attempts=attempt)
            timeout = (min(timeout[0], remaining), min(timeout[1], remaining))
        try:
            response = session.post(body, config, stream=stream, timeout=timeout)
        except UpstreamError as error:
            breaker.failure(config, error)
            if error.code in ("timeout", "connect_timeout") and deadline is not None and time.monotonic() >= deadline:
                raise _budget_spent(attempt + 1, error) from None
            pause = wait(error, attempt, config)
            if pause is None:
                raise
            if deadline is not None and time.monotonic() + pause >= deadline:
                raise _budget_spent(attempt + 1, error) from None
            attempt += 1
            logger.info(
                "upstream call to %s failed (code=%s status=%s); attempt %d of %d in %.2f s",
                config.host,
                error.code,
                error.status,
                attempt + 1,
                config.retries + 1,
                pause,
            )
            if on_wait is not None:
                on_wait(pause, error)
            if stop is not None and stop.wait(pause):
                raise UpstreamError("stopped") from None
            if stop is None:
                time.sleep(pause)
            if on_wait is not None:
                on_wait(0.0, error)
            continue
        breaker.success(config)
        return response


def wait(error: UpstreamError, attempt: int, config: UpstreamConfig) -> float | None:
    """Seconds to wait before the next attempt, or None when this failure is final."""
    if attempt >= config.retries:
        return None
    if error.code not in _RETRY_CODES and error.status not in _RETRY_STATUSES:
        return None
    if error.retry_after is not None:
        # The upstream said when: wait exactly that, unless it is longer than we may wait.
        return float(error.retry_after) if error.retry_after <= config.retry_after_max else None
    # Full jitter: anywhere between 0 and the exponential ceiling, so that many clients that
    # failed together do not come back together.
    ceiling = min(config.retry_max_delay, config.retry_base_delay * 2**attempt)
    return random.uniform(0, ceiling)  # noqa: S311 - timing jitter, not a secret


def _budget_spent(attempts: int, error: UpstreamError) -> UpstreamError:
    return UpstreamError("budget", error.status, attempts=attempts, last=error)
