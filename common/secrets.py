"""The plain secrets this process has seen, so that log records can be scrubbed of them.

Whoever holds a plain secret (providers.keys, when it encrypts or decrypts a stored key)
remembers it here; common.log's filter replaces each one in every log record.
"""

import threading

_known: set[str] = set()
_lock = threading.Lock()


def remember(secret: str) -> None:
    with _lock:
        _known.add(secret)


def known() -> frozenset[str]:
    """The plain secrets this process has remembered (for scrubbing logs)."""
    return frozenset(_known)
