"""The writes of a reply: its text as it streams (every reply of the process in one transaction,
each CHAT_STREAM_SAVE_INTERVAL_MS), and its final save, with its rendered HTML."""

from django.db import connection, transaction
from django.utils import timezone

from conversations.generation.live import running, running_lock
from conversations.models import Message, rendered_html
from providers import wording
from providers.upstream import UpstreamConfig, UpstreamError


def save_progress() -> list[int]:
    """Write the new text of every reply streaming in this process; returns those whose Stop was
    pressed on another process, for the caller to cancel (one transaction for all of them, and
    none when no reply has new text)."""
    with running_lock:
        replies = [(message_id, live) for message_id, live in running.items() if not live.finished]
    if not replies:
        return []
    changed = [(message_id, live, live.text) for message_id, live in replies]
    changed = [(message_id, live, text) for message_id, live, text in changed if len(text) > live.saved_length]
    ids = [message_id for message_id, _ in replies]
    stopped_sql = _STOPPED.format(ids=", ".join(["%s"] * len(ids)))  # the ids go in as parameters
    if not changed:
        # Nothing new (the replies wait for the upstream): a read alone, without the write lock
        # and the commit, which cost several times the read itself.
        with connection.cursor() as cursor:
            cursor.execute(stopped_sql, ids)
            return [row[0] for row in cursor.fetchall()]
    # Plain SQL: this runs every interval for as long as anything streams, and building the same
    # two ORM queries each time cost more than the database's own work on them.
    with transaction.atomic(), connection.cursor() as cursor:
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        cursor.executemany(_SAVE_TEXT, [(text, now, message_id) for message_id, _, text in changed])
        cursor.execute(stopped_sql, ids)
        stopped = [row[0] for row in cursor.fetchall()]
    for _, live, text in changed:
        live.saved_length = len(text)
    return stopped


# Only while the reply is unfinished (pending, streaming): its final save must never be undone.
# The HTML is rendered at that final save; until then the stored one is marked out of date.
_SAVE_TEXT = (
    "UPDATE conversations_message SET content = %s, html_version = 0, status = 'streaming', updated_at = %s "
    "WHERE id = %s AND status IN ('pending', 'streaming')"
)
_STOPPED = (
    "SELECT id FROM conversations_message WHERE id IN ({ids}) AND stop_requested AND status IN ('pending', 'streaming')"
)


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
