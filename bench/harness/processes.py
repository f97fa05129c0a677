"""Child processes, each in its own process group, and the CPU time they and the machine use."""

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path

from . import GUNICORN, HOST


class Processes:
    """Child processes, each in its own process group, stopped in reverse order of start."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, command: list[str], *, cwd: Path, env: dict, log: Path) -> subprocess.Popen:
        with open(log, "wb") as output:
            process = subprocess.Popen(  # noqa: S603 (our own fixed commands)
                command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.children.append((name, process))
        return process

    def stop_all(self) -> None:
        for _name, process in reversed(self.children):
            if process.poll() is None:
                # SIGINT is gunicorn's quick shutdown; the fake upstream stops on it too.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGINT)
        for _name, process in reversed(self.children):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        self.children.clear()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def bench_run(prefix: str, *, keep: bool, kept: str) -> Iterator[tuple[Path, Processes]]:
    """A temporary directory and the child processes of one run. SIGTERM ends the run like
    Ctrl+C; however it ends, the children are stopped and the directory removed (unless --keep)."""
    signal.signal(signal.SIGTERM, _interrupt)
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    processes = Processes()
    try:
        yield tmp, processes
    finally:
        processes.stop_all()
        if keep:
            print(f"Kept {tmp} ({kept}).")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run_bench(work: Callable[..., Coroutine], args, *, prefix: str, kept: str):
    """`work(args, directory, processes)` in a `bench_run`: what each benchmark's main does.

    Exits with 2 when the venv has no gunicorn and with 130 on Ctrl+C or SIGTERM (the children
    are stopped either way); otherwise returns what `work` returned.
    """
    if not GUNICORN.exists():
        print(f"{GUNICORN} is missing: install requirements.txt into .venv first", file=sys.stderr)
        raise SystemExit(2)
    try:
        with bench_run(prefix, keep=args.keep, kept=kept) as run:
            return asyncio.run(work(args, *run))
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        raise SystemExit(130) from None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes, from /proc (threads included)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def rss_mb(pids: list[int]) -> float:
    """Resident memory of processes in MB, from /proc (VmRSS)."""
    total_kb = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


def machine_busy_seconds(*, interrupts: bool = True) -> float:
    """CPU time the whole machine (all cores) spent busy since boot, from /proc/stat.

    Interrupt and softirq time (loopback networking, mostly ours) is not charged to any
    process; `interrupts=False` leaves it out.
    """
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    busy = user + nice + system + steal + (irq + softirq if interrupts else 0)
    return busy / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """pid and its direct children (gunicorn's master and its workers)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append(int(entry.name))
    return [pid, *children]


def bench_cpu_seconds(pids: dict) -> float:
    """CPU time of the bench's processes (each gunicorn with its workers) and of this process."""
    trees = [process_tree(pid) if name.startswith("gunicorn") else [pid] for name, pid in pids.items()]
    return cpu_seconds([pid for tree in trees for pid in tree]) + sum(os.times()[:2])


async def wait_for_quiet(limit_percent: float, patience: float, pids: dict, *, quiet_seconds: int = 3) -> None:
    """Wait until processes other than the bench's have used less than limit_percent of a core
    for quiet_seconds in a row.

    Other work on a 2-core machine (a test run, a browser) adds its own delays to the numbers;
    each run also reports how much CPU other processes used while it ran.
    """
    deadline = time.monotonic() + patience
    warned, quiet = False, 0
    while quiet < quiet_seconds:
        before = machine_busy_seconds(interrupts=False) - bench_cpu_seconds(pids)
        await asyncio.sleep(1.0)
        busy = (machine_busy_seconds(interrupts=False) - bench_cpu_seconds(pids) - before) * 100
        quiet = quiet + 1 if busy <= limit_percent else 0
        if quiet == 0 and time.monotonic() >= deadline:
            print(f"    warning: other processes still use {busy:.0f}% of a core; measuring anyway", flush=True)
            return
        if quiet == 0 and not warned:
            print(f"    waiting for a quiet machine (other processes use {busy:.0f}% of a core) ...", flush=True)
            warned = True
