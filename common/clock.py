"""The clock that code reads when tests must move time instead of waiting for it.

Call `clock.time()` and `clock.monotonic()` through the module (not `from common.clock import
time`): the tests' `clock` fixture replaces both to move them forward at once.
"""

import time as _time


def time() -> float:
    """Seconds since the epoch, as `time.time()`: for instants shared between processes."""
    return _time.time()


def monotonic() -> float:
    """Seconds that never go backwards, as `time.monotonic()`: for durations in one process."""
    return _time.monotonic()
