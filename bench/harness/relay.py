"""One timed run of the stream bench: every user submits at once (or over --ramp-ms) and
follows the reply's stream; afterwards each word is stamped with its arrival, and the database
is compared with what the upstream sent."""

import asyncio
import bisect
import json
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from . import HOST
from .app import saved_messages
from .client import HttpConnection, Response, fetch_json
from .processes import cpu_seconds, machine_busy_seconds, process_tree
from .report import RunResult
from .sends import SendFigures, SendTiming
from .users import STREAM_URL, User

WORD = re.compile(r"ts(\d+) ")


@dataclass
class Conversation:
    """One submitted message and the streamed reply, as seen by the client."""

    user: int
    tag: str
    submit_ns: int = 0
    posted_ns: int = 0
    message_id: int = 0
    stream: Response | None = None
    error: str = ""
    timing: SendTiming = field(default_factory=SendTiming)  # the POST's Server-Timing
    # Filled in by analyse():
    text: str = ""
    words: list[tuple[int, int]] = field(default_factory=list)  # (emit µs, arrival µs)
    done: bool = False


async def converse(user: User, tag: str, start: asyncio.Event, delay: float, timeout: float) -> Conversation:
    conversation = Conversation(user=user.index, tag=tag)
    await start.wait()
    if delay:
        await asyncio.sleep(delay)
    try:
        await asyncio.wait_for(_converse(user, conversation), timeout)
    except TimeoutError:
        conversation.error = f"timeout after {timeout:g} s"
    except Exception as exc:
        conversation.error = f"{type(exc).__name__}: {exc}"
    return conversation


async def _converse(user: User, conversation: Conversation) -> None:
    conversation.submit_ns = time.time_ns()
    conn = await HttpConnection.open(HOST, user.port)
    try:
        # The composer's fields, as htmx serialises the form, with a fresh client_id.
        form = {**user.fields, "client_id": str(uuid.uuid4()), "content": conversation.tag}
        headers = user.composer_headers()
        path = user.send_path or "/c/"
        posted = await conn.request("POST", path, headers, urlencode(form).encode())
        conversation.posted_ns = posted.end_ns
        conversation.timing = SendTiming.from_header(posted.header("server-timing"))
        match = STREAM_URL.search(posted.body().decode("utf-8", "replace"))
        if posted.status != 200 or not match:
            raise RuntimeError(f"POST {path} answered {posted.status} without a stream URL")
        conversation.message_id = int(match.group(2))
        if user.follow_up:  # the next turns are messages in this conversation: /c/<id>/messages/
            user.send_path = match.group(1).split("messages/")[0] + "messages/"
        # EventSource: a plain GET on the same (kept-alive) connection, offset 0.
        if conn.closed:
            conn = await HttpConnection.open(HOST, user.port)
        headers = {**user.event_source_headers(), **user.stream_route(posted)}
        conversation.stream = await conn.request("GET", match.group(1) + "?offset=0", headers)
        if conversation.stream.status != 200:
            raise RuntimeError(f"the stream answered {conversation.stream.status}")
    finally:
        conn.close()


def analyse(conversation: Conversation) -> None:
    """Split the stream into events and stamp each word with the arrival of the event holding it."""
    if conversation.stream is None:
        return
    text, ends, arrivals = "", [], []
    for now, (kind, data, event_id) in conversation.stream.events():
        if kind == "text":
            text += json.loads(data)
            ends.append(len(text))
            arrivals.append(now // 1000)
            if event_id != str(len(text)) and not conversation.error:
                conversation.error = f"event id {event_id} is not the text length {len(text)}"
        elif kind == "done":
            conversation.done = "html" in json.loads(data)
    conversation.text = text
    for match in WORD.finditer(text):
        event = bisect.bisect_left(ends, match.end())
        conversation.words.append((int(match.group(1)), arrivals[event]))
    if not conversation.done and not conversation.error:
        conversation.error = "the stream ended without a done event"


def check_database(db: Path, conversations: list[Conversation], sent: dict[str, str]) -> dict:
    """Compare each reply in the database with the text the upstream sent for it."""
    ids = [c.message_id for c in conversations if c.message_id]
    rows = saved_messages(db, ids, "role", "status", "content")
    counts = {"complete_full": 0, "truncated": 0, "lost": 0}
    for conversation in conversations:
        expected = sent.get(conversation.tag)
        role, status, content = rows.get(conversation.message_id, ("", "", ""))
        if expected is not None and role == "assistant" and status == "complete" and content == expected:
            counts["complete_full"] += 1
        elif expected is not None and content and expected.startswith(content):
            counts["truncated"] += 1
        else:
            counts["lost"] += 1
    return counts


async def loop_lag(samples: list[float], stop: asyncio.Event) -> None:
    """How late this event loop wakes up from a 5 ms sleep: the client's own queueing delay."""
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.005)
        samples.append((time.perf_counter() - before - 0.005) * 1000)


def _tree(name: str, pid: int) -> list[int]:
    """A gunicorn is its master and its workers; any other process is itself."""
    return process_tree(pid) if name.startswith("gunicorn") else [pid]


async def one_run(
    args, run: int, users: list[User], pids: dict, upstream_port: int, db: Path, samples: list | None = None
) -> RunResult:
    before_stats = await fetch_json(upstream_port, "/__stats")
    start, stop = asyncio.Event(), asyncio.Event()
    timeout = args.timeout or (args.first_token_ms + args.words * args.interval_ms) / 1000 + 60
    tasks = [
        asyncio.create_task(
            converse(
                user,
                f"bench run {run} user {user.index} {uuid.uuid4()}",
                start,
                args.ramp_ms / 1000 * i / max(1, len(users)),
                timeout,
            )
        )
        for i, user in enumerate(users)
    ]
    lag: list[float] = []
    lag_task = asyncio.create_task(loop_lag(lag, stop))
    await asyncio.sleep(0.05)
    cpu_before = {name: cpu_seconds(_tree(name, pid)) for name, pid in pids.items()}
    client_before = sum(os.times()[:2])
    machine_before = machine_busy_seconds(interrupts=False)
    interrupts_before = machine_busy_seconds() - machine_before
    wall_before = time.monotonic()
    start.set()
    conversations = await asyncio.gather(*tasks)
    wall = time.monotonic() - wall_before
    cpu = {name: cpu_seconds(_tree(name, pid)) - cpu_before[name] for name, pid in pids.items()}
    cpu["client"] = sum(os.times()[:2]) - client_before
    machine = machine_busy_seconds(interrupts=False)
    interrupts = machine_busy_seconds() - machine - interrupts_before
    cpu["other processes"] = max(0.0, machine - machine_before - sum(cpu.values()))
    cpu["softirq"] = interrupts
    stop.set()
    await lag_task

    stats = await fetch_json(upstream_port, "/__stats")
    sent = stats["replies"]
    emit_late = [us / 1000 for us in stats["emit_late_us"][len(before_stats["emit_late_us"]) :]]
    errors, relay, later, steady, first, ttft, post = [], [], [], [], [], [], []
    # Words emitted once every POST of the run was answered: streams only, no new conversations.
    last_posted_us = max((c.posted_ns for c in conversations), default=0) // 1000
    completed = 0
    for conversation in conversations:
        analyse(conversation)
        expected = sent.get(conversation.tag)
        if not conversation.error and conversation.text != expected:
            conversation.error = "the streamed text differs from what the upstream sent"
        if conversation.error:
            errors.append(conversation.error)
        elif conversation.done:
            completed += 1
        if conversation.posted_ns:
            post.append((conversation.posted_ns - conversation.submit_ns) / 1e6)
        if samples is not None:
            samples += [
                (
                    run,
                    conversation.user,
                    i,
                    emit,
                    arrival,
                    conversation.submit_ns // 1000,
                    conversation.posted_ns // 1000,
                )
                for i, (emit, arrival) in enumerate(conversation.words)
            ]
        if conversation.words:
            relay += [(arrival - emit) / 1000 for emit, arrival in conversation.words]
            later += [(arrival - emit) / 1000 for emit, arrival in conversation.words[1:]]
            steady += [(arrival - emit) / 1000 for emit, arrival in conversation.words if emit > last_posted_us]
            emit, arrival = conversation.words[0]
            first.append((arrival - emit) / 1000)
            ttft.append((arrival - conversation.submit_ns / 1000) / 1000)
    database = check_database(db, conversations, sent)
    result = RunResult(
        run, len(users), completed, errors, database, relay, later, steady, first, ttft, post, cpu, wall, lag, emit_late
    )
    result.sends = SendFigures.of(conversations)
    result.non_streamed = args.non_streamed
    return result
