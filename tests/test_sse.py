"""common/sse.py: what the formatter writes and what the parser reads back, however it is cut."""

import itertools
import json

import pytest

from common.sse import Event, Parser, format_comment, format_event, format_retry, parse

STREAM = (
    format_retry(1000)
    + format_event(json.dumps("Hel"), event="text", id=3)
    + format_comment("keep-alive")
    + format_event(json.dumps("lo wörld ☕"), event="text", id=13)
    + format_event(json.dumps({"html": "<p>Hello</p>"}), event="done")
).encode()
EVENTS = [
    Event("text", '"Hel"', "3"),
    Event("text", '"lo w\\u00f6rld \\u2615"', "13"),
    Event("done", '{"html": "<p>Hello</p>"}', None),
]


def _cut(data: bytes, *cuts: int) -> list[bytes]:
    edges = [0, *cuts, len(data)]
    return [data[start:end] for start, end in itertools.pairwise(edges)]


def test_it_writes_the_bytes_the_reply_stream_sends():
    assert format_event('"Hel"', event="text", id=3) == 'id: 3\nevent: text\ndata: "Hel"\n\n'
    assert format_event('"Retrying"', event="waiting") == 'event: waiting\ndata: "Retrying"\n\n'
    assert format_event("[DONE]") == "data: [DONE]\n\n"
    assert format_comment("keep-alive") == ": keep-alive\n\n"
    assert format_retry(1000) == "retry: 1000\n\n"


def test_it_writes_multi_line_data_as_one_data_line_per_line():
    assert format_event("one\ntwo\r\nthree\rfour") == "data: one\ndata: two\ndata: three\ndata: four\n\n"


@pytest.mark.parametrize("data", ["", " leading space", "one\ntwo", "ends with a newline\n", "\n\n", "é ☕ 中文"])
def test_what_it_writes_it_reads_back(data):
    written = format_event(data, event="text", id="7").encode()

    assert list(parse([written])) == [Event("text", data, "7")]


def test_it_reads_the_same_events_wherever_the_bytes_are_cut():
    for cut in range(len(STREAM) + 1):
        assert list(parse(_cut(STREAM, cut))) == EVENTS, f"cut at byte {cut}"
    assert list(parse(_cut(STREAM, *range(1, len(STREAM))))) == EVENTS, "one byte at a time"


def test_it_reads_crlf_line_ends_wherever_they_are_cut():
    crlf = STREAM.replace(b"\n", b"\r\n")

    for cut in range(len(crlf) + 1):
        assert list(parse(_cut(crlf, cut))) == EVENTS, f"cut at byte {cut}"


def test_it_skips_comments_retry_and_unknown_fields():
    stream = b":hello\n: keep-alive\n\nretry: 500\nfoo: bar\ndata: x\n\n"

    assert list(parse([stream])) == [Event("message", "x")]


def test_it_reads_the_spec_s_field_forms():
    stream = b"data\ndata:no space\ndata:  two spaces\n\nevent: named\n\n"

    # `data` alone is an empty line of data; one space after the colon is dropped; an event
    # without data is not dispatched and its name does not leak into the next event.
    assert list(parse([stream, b"data: next\n\n"])) == [
        Event("message", "\nno space\n two spaces"),
        Event("message", "next"),
    ]


def test_an_id_belongs_to_its_own_event():
    stream = b"id: 1\ndata: a\n\ndata: b\n\n"

    assert [event.id for event in parse([stream])] == ["1", None]


def test_it_keeps_bytes_of_a_character_cut_in_two():
    stream = format_event("café ☕").encode()

    for cut in range(len(stream) + 1):
        assert [event.data for event in parse(_cut(stream, cut))] == ["café ☕"], f"cut at byte {cut}"


def test_an_unfinished_last_event_is_dropped_by_parse_and_returned_by_end():
    parser = Parser()

    assert parser.feed(b"data: complete\n\ndata: cut\n") == [Event("message", "complete")]
    assert list(parse([b"data: cut\n"])) == []
    assert parser.end() == [Event("message", "cut")]
    assert parser.end() == []


def test_ends_event_ends_a_chunk_s_complete_data_line_without_the_blank_line():
    parser = Parser(ends_event=lambda data: data.endswith("}"))

    assert parser.feed(b'data: {"a": 1}\n') == [Event("message", '{"a": 1}')]
    assert parser.feed(b'data: {"b":') == []
    assert parser.feed(b" 2\n") == []  # not complete: it waits for the blank line
    assert parser.feed(b"\n") == [Event("message", '{"b": 2')]


def test_data_only_gives_the_same_events_data_alone_wherever_the_bytes_are_cut():
    for cut in range(len(STREAM) + 1):
        parser = Parser(data_only=True)
        read = [data for chunk in _cut(STREAM, cut) for data in parser.feed(chunk)]
        assert read == [event.data for event in EVENTS], f"cut at byte {cut}"
    parser = Parser(ends_event=lambda data: data.endswith("}"), data_only=True)
    assert parser.feed(b'data: {"a": 1}\ndata: cut\n') == []
    assert parser.feed(b'\ndata: {"b": 2}\n') == ['{"a": 1}\ncut', '{"b": 2}']
    assert parser.feed(b"data: left\n") == []
    assert parser.end() == ["left"]
