"""One reply's upstream call: streamed piece by piece into its `Live`, or whole (CHAT_STREAMING=0),
then saved as complete, stopped or a labelled error, with its usage row."""

import logging

from django.conf import settings

from conversations.generation.calls import Call
from conversations.generation.live import Live, release_connection
from conversations.generation.saver import save, save_failure
from conversations.models import Message
from conversations.payload import DoesNotFit, build_messages, fit_window, request_params
from providers import catalogue, keys, wording
from providers.upstream import CompletionStream, UpstreamError, chat_completion, open_stream
from usage.models import Usage

logger = logging.getLogger(__name__)


def generate(message_id: int, live: Live) -> None:
    """Ask the upstream for the reply of a stored `pending` message, and save what it answers."""
    message = Message.objects.select_related("conversation__owner", "parent").get(pk=message_id)
    conversation = message.conversation
    try:
        key = keys.resolve_key(conversation.owner)
    except keys.EncryptionError as error:
        logger.error("cannot use a stored API key: %s", error)
        save_failure(message_id, UpstreamError("key_unreadable"))
        return
    # The last check before the upstream: only a model the admins offer is ever sent.
    model = catalogue.offered_model(conversation.model, conversation.owner)
    if not model or catalogue.model_is_turned_off(model) or not catalogue.may_use(conversation.owner, model):
        save_failure(message_id, UpstreamError("model_not_offered"))
        return
    params = request_params(conversation, model=model)
    try:
        messages, omitted = fit_window(build_messages(conversation, upto=message.parent), model=model, params=params)
    except DoesNotFit as error:  # nothing is sent: the upstream would refuse it
        save_failure(message_id, UpstreamError("too_long", detail=str(error)))
        return
    if omitted != message.context_omitted:
        save(message_id, context_omitted=omitted)
    request = {"messages": messages, "model": model, "params": params, "config": key.config()}
    live.upstream = wording.name(request["config"])
    call = Call(message, key, messages=messages, model=model)
    release_connection()  # the upstream may take a while; the saves take one again
    if settings.CHAT_STREAMING:
        _generate_streamed(message_id, live, request, call)
    else:
        _generate_whole(message_id, live, request, call)


def _generate_streamed(message_id: int, live: Live, request: dict, call: Call) -> None:
    try:
        stream = open_stream(**request, stop=live.stop, on_wait=live.waiting)
    except UpstreamError as error:
        call.failed(error)
        if not live.cancelled:  # a reply stopped while waiting stays stopped
            save_failure(message_id, error, request["config"])
        return
    with live.changed:
        live.stream = stream
        cancelled = live.cancelled
    if cancelled:
        stream.close()
    failure = None
    with stream:
        try:
            for piece in stream:
                live.append(piece)
        except UpstreamError as error:
            failure = error
        # Saved before the stream is released: releasing may still read the end of the body.
        if stream.cancelled:
            save(message_id, status=Message.Status.STOPPED, content=live.text, **_stats(stream))
            call.ended(Usage.Status.STOPPED, text=live.text, **_stats(stream))
        elif failure is not None:
            save_failure(message_id, failure, request["config"], content=live.text, **_stats(stream))
            call.failed(failure, text=live.text, **_stats(stream))
        else:
            save(message_id, status=Message.Status.COMPLETE, content=live.text, **_stats(stream))
            call.ended(Usage.Status.COMPLETE, text=live.text, **_stats(stream))


def _generate_whole(message_id: int, live: Live, request: dict, call: Call) -> None:
    """CHAT_STREAMING=0: one non-streamed request, for upstreams that cannot stream."""
    try:
        completion = chat_completion(**request, stop=live.stop, on_wait=live.waiting)
    except UpstreamError as error:
        call.failed(error)
        if not live.cancelled:
            save_failure(message_id, error, request["config"])
        return
    # The whole reply arrives at once: its first text is its last byte.
    times = {"latency_ms": completion.latency_ms, "first_token_ms": completion.latency_ms}
    if live.cancelled:  # Stop was pressed while the upstream wrote: the reply stays stopped
        call.ended(Usage.Status.STOPPED, text=completion.content, **times, **completion.usage)
        return
    save(
        message_id,
        status=Message.Status.COMPLETE,
        content=completion.content,
        finish_reason=completion.finish_reason,
        model=completion.model,
        upstream_id=completion.response_id,
        **times,
        **completion.usage,
    )
    live.append(completion.content)
    call.ended(Usage.Status.COMPLETE, text=completion.content, **times, **completion.usage)


def _stats(stream: CompletionStream) -> dict:
    return {
        "finish_reason": stream.finish_reason,
        "model": stream.model,
        "upstream_id": stream.response_id,
        "latency_ms": stream.latency_ms,
        "first_token_ms": stream.first_token_ms,
        **stream.usage,
    }
