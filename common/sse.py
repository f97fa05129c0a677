"""Server-sent events: the one formatter and the one incremental parser (standard library only).

The format is the HTML standard's `text/event-stream`: an event is `field: value` lines ended by
a blank line, a line starting with `:` is a comment, and multi-line data is one `data:` line per
line. The parser takes bytes as they arrive, split anywhere, with LF or CRLF line ends.
"""

from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple


class Event(NamedTuple):
    event: str  # "message" when the stream names none, as EventSource does
    data: str
    id: str | None = None  # this event's own `id:` field, if it has one


def format_event(data: str, *, event: str | None = None, id: str | int | None = None) -> str:
    """One event, as its `id:`, `event:` and `data:` lines and the blank line that ends it."""
    head = ("" if id is None else f"id: {id}\n") + ("" if event is None else f"event: {event}\n")
    if "\n" in data or "\r" in data:
        # A line break inside a data line would end the field: each line gets its own `data:`.
        data = "\ndata: ".join(data.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    return f"{head}data: {data}\n\n"


def format_comment(text: str = "") -> str:
    """A comment, which every client skips: a keep-alive that shows the connection is still there."""
    return f": {text}\n\n"


def format_retry(milliseconds: int) -> str:
    """How long a browser's EventSource waits before it reconnects."""
    return f"retry: {milliseconds}\n\n"


_new_tuple = tuple.__new__


class Parser:
    """Feed it bytes as they arrive; it returns the events they complete.

    `ends_event`, if given, lets a data line end its event without the blank line when a chunk
    ends right after it and the data satisfies it: some upstreams end events with one newline.
    `data_only`: `feed` and `end` give each event's data alone, for a reader that needs neither
    its name nor its id. The upstream client reads one event per streamed word, and building an
    Event for each would cost it a quarter more than the loop it had of its own.
    """

    def __init__(self, *, ends_event: Callable[[str], bool] | None = None, data_only: bool = False) -> None:
        self._ends_event = ends_event
        self._data_only = data_only
        self._buffer = b""
        self._event = "message"
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[Event] | list[str]:
        # This runs once per streamed word: local names, slices instead of method calls, and
        # tuple.__new__ instead of the NamedTuple's own __new__ keep it about as cheap as the
        # loop the upstream client had of its own.
        lines = (self._buffer + chunk).split(b"\n") if self._buffer else chunk.split(b"\n")
        self._buffer = lines.pop()
        events = []
        data = self._data
        for line in lines:
            if line[-1:] == b"\r":
                line = line[:-1]
            if line[:5] == b"data:":
                value = line[5:].decode("utf-8", "replace")
                data.append(value[1:] if value[:1] == " " else value)
            elif not line:
                if data:
                    joined = "\n".join(data)
                    events.append(joined if self._data_only else _new_tuple(Event, (self._event, joined, self._id)))
                    data = self._data = []
                self._event, self._id = "message", None
            else:
                self._field(line)
        if data and self._ends_event and not self._buffer and self._ends_event(data[-1]):
            events.append(self._dispatch())
        return events

    def _field(self, line: bytes) -> None:
        name, _, value = line.decode("utf-8", "replace").partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        elif name == "data":  # `data` without a colon: an empty data line
            self._data.append(value)
        # Comments (an empty name) and other fields (`retry`) are not events.

    def end(self) -> list[Event] | list[str]:
        """The event the stream left without its blank line, if any (the standard drops it)."""
        return [self._dispatch()] if self._data else []

    def _dispatch(self) -> Event | str:
        data = "\n".join(self._data)
        event = data if self._data_only else Event(self._event, data, self._id)
        self._event, self._data, self._id = "message", [], None
        return event


def parse(chunks: Iterable[bytes]) -> Iterator[Event]:
    """The events of a whole stream; an unfinished last event is dropped, as the standard says."""
    parser = Parser()
    for chunk in chunks:
        yield from parser.feed(chunk)
