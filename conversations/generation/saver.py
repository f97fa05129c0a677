"""The writes of a reply: its text as it streams (every reply of the process in one transaction,
each CHAT_STREAM_SAVE_INTERVAL_MS), and its final save, with its rendered HTML."""

from django.db import transaction
from django.utils import timezone

from conversations.generation.live import running, running_lock
from conversations.models import Message, rendered_html
from providers import wording
from providers.upstream import UpstreamConfig, UpstreamError


def save_progress() -> list[int]:
    """Write the new text of every reply streaming in this process; returns those whose Stop was
    pressed on another process, for the caller to cancel (one transaction for all of them)."""
    with running_lock:
        replies = [(message_id, live) for message_id, live in running.items() if not live.finished]
    if not replies:
        return []
    now = timezone.now()
    with transaction.atomic():
        for message_id, live in replies:
            text = live.text
            if len(text) > live.saved_length:
                # Only while the reply is unfinished: its final save must never be undone. The HTML
                # is rendered at that final save; until then the stored one is marked out of date.
                Message.objects.filter(pk=message_id, status__in=Message.IN_PROGRESS).update(
                    content=text, html_version=0, status=Message.Status.STREAMING, updated_at=now
                )
                live.saved_length = len(text)
        stopped = Message.objects.filter(
            pk__in=[message_id for message_id, _ in replies], stop_requested=True, status__in=Message.IN_PROGRESS
        ).values_list("pk", flat=True)
        return list(stopped)


def save(message_id: int, **fields) -> None:
    """Write fields of a reply; new content is written with its HTML, so no page renders it."""
    if fields.get("latency_ms") is None:
        fields.pop("latency_ms", None)
    if "content" in fields:
        fields.update(rendered_html(fields["content"]))
    Message.objects.filter(pk=message_id).update(updated_at=timezone.now(), **fields)


def save_failure(message_id: int, error: UpstreamError, config: UpstreamConfig | None = None, **fields) -> None:
    """A labelled error with Retry, in the words of providers.wording; any text that arrived is kept (in `fields`)."""
    text = wording.explain(error, config)
    save(message_id, status=Message.Status.ERROR, error=text, error_code=error.code, **fields)
