"""The load harness's people, who keep chatting (new conversations, follow-ups, double clicks),
and its check of the database afterwards: nothing lost, duplicated or left unfinished."""

import asyncio
import collections
import json
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from . import HOST
from .client import HttpConnection
from .users import User

NUMBER = re.compile(r"/\d+")
STREAM_PATH = re.compile(r'data-stream-url="(/c/(\d+)/messages/(\d+)/stream/)"')
NEW_CONVERSATION_EVERY = 5

# Run in the app copy by `manage.py shell`: every message and reply, as JSON on stdout.
CHECK_SCRIPT = """
import json
from conversations.models import Message
rows = Message.objects.values_list("id", "role", "status", "client_id", "content", "error_code", "error", "parent_id")
print("ROWS" + json.dumps([[r[0], r[1], r[2], str(r[3]) if r[3] else "", r[4], r[5], bool(r[6]), r[7]] for r in rows]))
"""


@dataclass
class Turn:
    user: int
    index: int
    client_id: str
    content: str
    streaming: bool
    doubled: bool = False
    submit_ns: int = 0
    posted_ns: int = 0
    done_ns: int = 0
    status: int = 0
    message_id: int = 0
    text: str = ""
    done: bool = False
    error: str = ""


@dataclass
class Totals:
    requests: collections.Counter = field(default_factory=collections.Counter)
    client_errors: collections.Counter = field(default_factory=collections.Counter)


class Person(User):
    """A simulated user who keeps chatting: new conversations and follow-up messages."""

    def __init__(self, index: int, port: int, password: str, streaming: bool) -> None:
        super().__init__(index, port, password)
        self.streaming = streaming
        self.conversation = 0

    async def request(self, totals: Totals, method: str, path: str, headers: dict, body: bytes = b""):
        conn = await HttpConnection.open(HOST, self.port)
        try:
            totals.requests[method + " " + NUMBER.sub("/<id>", path.split("?")[0])] += 1
            return await conn.request(method, path, headers, body)
        finally:
            conn.close()

    async def send(self, turn: Turn, totals: Totals) -> None:
        if self.conversation and turn.index % NEW_CONVERSATION_EVERY:
            path, form = f"/c/{self.conversation}/messages/", {"content": turn.content, "client_id": turn.client_id}
        else:
            path, form = "/c/", {**self.fields, "content": turn.content, "client_id": turn.client_id}
        body = urlencode(form).encode()
        turn.submit_ns = time.time_ns()
        posts = [self.request(totals, "POST", path, self.composer_headers(), body)]
        if turn.doubled:  # a double click: the same message twice, at the same moment
            posts.append(self.request(totals, "POST", path, self.composer_headers(), body))
        responses = await asyncio.gather(*posts, return_exceptions=True)
        turn.posted_ns = time.time_ns()
        for response in responses:
            if isinstance(response, BaseException):
                raise response
            if response.status != 200:
                turn.status = response.status
                raise RuntimeError(f"POST {path} answered {response.status}")
        turn.status = 200
        # Of a double submit, one response shows the turn; the repeat answers with nothing to swap.
        matches = [STREAM_PATH.search(response.body().decode("utf-8", "replace")) for response in responses]
        match = next((m for m in matches if m), None)
        if not match:
            raise RuntimeError(f"POST {path} answered without a stream URL")
        stream_path, conversation, message = match.groups()
        self.conversation, turn.message_id = int(conversation), int(message)
        stream = await self.request(totals, "GET", stream_path + "?offset=0", self.event_source_headers())
        if stream.status != 200:
            raise RuntimeError(f"the stream answered {stream.status}")
        turn.done_ns = stream.end_ns
        events = [event for _, event in stream.events()]
        turn.text = "".join(json.loads(event.data) for event in events if event.event == "text")
        turn.done = any(event.event == "done" for event in events)
        if not turn.done:
            raise RuntimeError("the stream ended without a done event")

    async def chat(self, turns: list[Turn], totals: Totals, deadline: float) -> None:
        for turn in turns:
            if time.monotonic() > deadline:
                turn.error = "not sent: time limit"
                continue
            try:
                await asyncio.wait_for(self.send(turn, totals), max(1.0, deadline - time.monotonic()))
            except TimeoutError:
                turn.error = "timeout"
            except Exception as exc:
                turn.error = f"{type(exc).__name__}: {exc}"
            if turn.error:
                totals.client_errors[re.sub(r"\d+", "N", turn.error)[:80]] += 1


def check(rows: list, turns: list[Turn]) -> dict:
    users = [r for r in rows if r[1] == "user"]
    replies = [r for r in rows if r[1] == "assistant"]
    by_client = collections.Counter(r[3] for r in users if r[3])
    content_of = {r[0]: r[4] for r in users}
    sent = [t for t in turns if t.submit_ns]
    lost = [t for t in sent if by_client[t.client_id] == 0]
    duplicated = [t for t in sent if by_client[t.client_id] > 1]
    statuses = collections.Counter(r[2] for r in replies)
    labels = collections.Counter(f"{r[2]}:{r[5]}" for r in replies if r[2] != "complete")
    unfinished = [r for r in replies if r[2] in ("pending", "streaming")]
    unlabelled = [r for r in replies if r[2] in ("error", "interrupted") and not r[6]]
    # A complete reply is exactly the echo of its message (the fake upstream's answer).
    wrong = [r for r in replies if r[2] == "complete" and r[4] != "Echo: " + content_of.get(r[7], "")]
    stored = {r[0]: r for r in replies}
    followed_wrong = [
        t
        for t in turns
        if t.streaming
        and t.done
        and stored.get(t.message_id, [0, 0, ""])[2] == "complete"
        and t.text != stored[t.message_id][4]
    ]
    return {
        "messages sent": len(sent),
        "user messages stored": len(users),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "replies": len(replies),
        "reply statuses": dict(statuses),
        "labelled replies (status:code)": dict(labels),
        "unfinished replies (pending/streaming)": len(unfinished),
        "error replies without a reason": len(unlabelled),
        "complete replies with wrong text": len(wrong),
        "streamed text differing from the stored reply": len(followed_wrong),
    }


def missed_targets(report: dict) -> list[str]:
    missed = []
    for name in (
        "lost",
        "duplicated",
        "unfinished replies (pending/streaming)",
        "error replies without a reason",
        "complete replies with wrong text",
        "streamed text differing from the stored reply",
        "database is locked (server logs)",
        "HTTP 5xx answers (server logs)",
    ):
        if report[name]:
            missed.append(f"{name}: {report[name]}")
    if report["messages sent"] != report["users"] * report["messages per user"]:
        missed.append(f"only {report['messages sent']} of {report['users'] * report['messages per user']} sent")
    return missed
