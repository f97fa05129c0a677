"""Run the app so that it stops with the `make` that started it.

    .venv/bin/python scripts/supervise.py .venv/bin/gunicorn chatsite.wsgi --config gunicorn.conf.py

`make run` serves through this script and `make run-local` through scripts/run_local.py, which
uses it too. The app runs in a session of its own and gets the signal that stops this script:
SIGINT (Ctrl+C) and SIGTERM as they are, SIGHUP as SIGTERM (gunicorn would reload on SIGHUP, not
stop). When nothing is left to stop, the app's whole process group is ended.

Why a script, and not just `exec` in the recipe: GNU make passes SIGTERM on to the command it
runs, but on SIGINT and SIGHUP it only waits for that command, on the assumption that the
terminal signalled every process of the foreground group. A signal sent to make's PID alone
(`kill -HUP`, a process manager, an IDE's Stop) would leave the app serving and make waiting
for it. Make's handler sets the signal back to its default before it waits, and that is
visible in /proc/<make>/status, so this script watches make and stops as if it had received
the signal itself. It also stops when make is gone (killed with SIGKILL).
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# How often make is looked at: a stop takes at most this long to be noticed.
WATCH_INTERVAL = 0.1

_stopping = threading.Event()


class Stop(Exception):
    """A signal that ends the app: SIGINT, SIGTERM or SIGHUP."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stop(signum, frame) -> None:
    _stopping.set()
    raise Stop(signum)


def _proc_status(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def caught_signals(pid: int) -> set[int]:
    """The signals process `pid` has a handler for (its SigCgt mask); empty if unreadable."""
    mask = int(_proc_status(pid).get("SigCgt", "0").strip() or "0", 16)
    return {signum for signum in STOP_SIGNALS if mask & (1 << (signum - 1))}


def _watch_make(make_pid: int) -> None:
    watched = caught_signals(make_pid)
    while not _stopping.is_set():
        time.sleep(WATCH_INTERVAL)
        # A make that is gone was killed without a chance to pass anything on.
        gone = signal.SIGTERM if os.getppid() != make_pid else next(iter(watched - caught_signals(make_pid)), None)
        if gone is not None and not _stopping.is_set():
            os.kill(os.getpid(), gone)  # handled by _raise_stop, in the main thread
            return


def catch_stop_signals() -> None:
    """Turn SIGINT, SIGTERM and SIGHUP into `Stop`, whether sent here or to the make that runs us."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _raise_stop)
    parent = os.getppid()
    comm = _proc_status(parent).get("Name", "").strip()
    if comm in ("make", "gmake"):
        threading.Thread(target=_watch_make, args=(parent,), name="watch-make", daemon=True).start()


def ignore_stop_signals() -> None:
    """For a clean-up that is bounded in time and must not be interrupted."""
    _stopping.set()
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def _app_signal(signum: int) -> int:
    return signal.SIGTERM if signum == signal.SIGHUP else signum


def stop_app(app: subprocess.Popen, signum: int) -> None:
    """Pass the signal on to the app and wait for it to stop: the replies it is still finishing
    are saved first. Another signal meanwhile is passed on too (a second Ctrl+C stops at once)."""
    while True:
        # The app runs in a process group of its own, which gets the signal as from a terminal.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(app.pid, _app_signal(signum))
        try:
            app.wait()
            return
        except Stop as again:
            signum = again.signum


def end_app_group(app: subprocess.Popen) -> None:
    """Nothing of the app may outlive it (say, a worker whose master was killed)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(app.pid, signal.SIGTERM)


def run_app(command: list[str], env: dict | None = None) -> int:
    """Run `command` until it ends or a stop signal arrives; its exit status, or 128 + the signal.

    `catch_stop_signals()` must have been called.
    """
    app = None
    try:
        app = subprocess.Popen(command, env=env, start_new_session=True)  # noqa: S603 (the Makefile's)
        return app.wait()
    except Stop as stop:
        if app is not None:
            stop_app(app, stop.signum)
        return 128 + stop.signum
    finally:
        if app is not None:
            end_app_group(app)


def main(command: list[str]) -> int:
    catch_stop_signals()
    try:
        return run_app(command)
    except Stop as stop:  # before the app had started
        return 128 + stop.signum
    finally:
        ignore_stop_signals()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(f"usage: {sys.argv[0]} COMMAND [ARGUMENT ...]  (the app to run until make stops)")
    sys.exit(main(sys.argv[1:]))
