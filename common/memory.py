"""Giving freed memory back to the system after a burst (glibc's malloc_trim; nothing elsewhere).

A burst runs a hundred threads at once; glibc's allocator gives each its own arena and keeps
what they freed, so the process's resident memory stays at its high-water mark, a little
higher after each burst as the arenas fragment. Two calls bound it: fewer arenas from the
start (`limit_arenas`, before the threads exist), and a trim once the burst is over (`trim`).
"""

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # mallopt's parameter, from glibc's malloc.h


def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_LIBC = _libc()


def limit_arenas(arenas: int) -> None:
    """At most `arenas` malloc arenas for this process's threads (call it before they start)."""
    if _LIBC is not None and not _LIBC.mallopt(_M_ARENA_MAX, arenas):
        logger.info("mallopt(M_ARENA_MAX) was refused")


def trim() -> None:
    """Give the free pages of every arena back to the system."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
