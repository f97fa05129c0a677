"""The time, read through one place so tests can move it (tests/conftest.py's `clock` fixture)."""

import time as _time


def time() -> float:
    return _time.time()


def monotonic() -> float:
    return _time.monotonic()
