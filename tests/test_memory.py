"""Freed memory goes back to the system after a burst (common.memory, the saver's loop)."""

import threading

import pytest

from common import memory
from conversations.generation import live, pool


def test_the_allocator_calls_work_here():
    if memory._LIBC is None:
        pytest.skip("not glibc: both calls do nothing")
    memory.limit_arenas(8)  # glibc's own default on this machine's cores: changes nothing for the run
    memory.trim()


def test_the_end_of_a_burst_trims_once(monkeypatch, settings):
    settings.CHAT_STREAM_SAVE_INTERVAL_MS = 10
    trimmed, rounds = threading.Event(), []
    burst = {message_id: object() for message_id in range(-pool.BURST, 0)}

    def sleep(seconds):
        rounds.append(seconds)
        if len(rounds) == 2:  # the saver saw the burst once: it ends
            for message_id in burst:
                live.running.pop(message_id, None)
        if len(rounds) > 4:
            raise SystemExit  # ends the loop under test

    monkeypatch.setattr(pool.time, "sleep", sleep)
    monkeypatch.setattr(pool, "save_progress", lambda: [])
    monkeypatch.setattr(pool, "release_connection", lambda: None)
    monkeypatch.setattr(pool.relay, "keep_alive", lambda ids: None)
    monkeypatch.setattr(memory, "trim", lambda: trimmed.set() or rounds.append("trim"))
    live.running.update(burst)
    try:
        with pytest.raises(SystemExit):
            pool._save_forever()
    finally:
        for message_id in burst:
            live.running.pop(message_id, None)

    assert trimmed.is_set()
    assert rounds.count("trim") == 1, "once per burst, not on every idle round"


def test_a_worker_freezes_what_it_loaded_so_full_collections_skip_it():
    import gc
    import runpy
    from pathlib import Path

    config = runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"))
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        config["post_worker_init"](worker=None)
        assert gc.get_freeze_count() > 1000  # the test process's modules, at least
    finally:
        gc.unfreeze()
