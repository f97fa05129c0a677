"""A reply as server-sent events, for the browser's EventSource."""

import json

from django.http import HttpRequest, StreamingHttpResponse
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from common import counters
from common.errors import error_response
from common.sse import format_comment, format_event, format_retry
from conversations import generation
from conversations.models import Message
from conversations.selectors import with_siblings
from conversations.views._shared import MESSAGE, owned_message


@require_GET
def message_stream(request: HttpRequest, pk: int, message_pk: int) -> StreamingHttpResponse:
    """Server-sent events of a reply: its text from an offset on, then the finished message.

    `text` events carry new text (a JSON string) with the text's length so far as their id,
    so a reconnect (Last-Event-ID, or `?offset=`) resumes without repeating anything. `waiting`
    events say how long the reply waits before another attempt ("" once it goes on). The
    `done` event carries the message's final HTML. Following a reply never starts one: any
    number of tabs and reconnects read the same generation, up to the caps of open streams
    per person and per reply (429 with the reason past them).
    """
    conversation, message = owned_message(request, pk, message_pk, role=Message.Role.ASSISTANT)
    try:
        slots = generation.stream_slots(user_id=request.user.pk, message_id=message.pk)
    except generation.TooManyStreams as error:
        return error_response(request, 429, str(error))
    offset = _offset(request.headers.get("Last-Event-ID") or request.GET.get("offset"))

    # Bytes, not str: Django would otherwise look up the response's charset again for every event.
    def events():
        yield format_retry(1000).encode()
        for event in generation.follow(message.pk, offset):
            if event is None:
                yield format_comment("keep-alive").encode()
            elif isinstance(event, generation.Waiting):
                yield format_event(json.dumps(event.text), event="waiting").encode()
            else:
                text, end = event
                yield format_event(json.dumps(text), event="text", id=end).encode()
        message.refresh_from_db()
        html = render_to_string(
            f"{MESSAGE}#message", {"conversation": conversation, "message": with_siblings(message)}, request=request
        )
        yield format_event(json.dumps({"html": html}), event="done").encode()

    # The slots are given back when the stream ends or the server closes it (the client left).
    response = StreamingHttpResponse(counters.Holding(events(), slots), content_type="text/event-stream")
    # Each event must reach the browser at once: no caching, no proxy buffering.
    response["Cache-Control"] = "no-cache, no-store"
    response["X-Accel-Buffering"] = "no"
    return response


def _offset(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0
