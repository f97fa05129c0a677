"""Caps on the open streams of a person and of a reply, counted in the cache across processes."""

from django.conf import settings

from common import counters
from conversations.generation.live import KEEPALIVE_SECONDS

# An open stream's slot lives this long unless renewed; a stream renews it at its events (a
# keep-alive at least every KEEPALIVE_SECONDS), so only a process that died leaves slots behind.
STREAM_SLOT_SECONDS = 4 * KEEPALIVE_SECONDS


class TooManyStreams(Exception):
    """The person, or the reply, already has as many open streams as allowed; says which."""


def stream_slots(*, user_id: int, message_id: int) -> list[counters.Lease]:
    """Take one of the person's CHAT_STREAMS_PER_PERSON and one of the reply's
    CHAT_STREAMS_PER_REPLY open streams, or raise TooManyStreams.

    Every stream holds a server thread for as long as it is open: without a cap, one person
    could take them all, and nothing else (sign-in, /healthz) would be served.
    """
    per_person, per_reply = settings.CHAT_STREAMS_PER_PERSON, settings.CHAT_STREAMS_PER_REPLY
    person = counters.lease(f"streams:person:{user_id}", limit=per_person, ttl=STREAM_SLOT_SECONDS)
    if person is None:
        raise TooManyStreams(
            f"You have {per_person} {'reply' if per_person == 1 else 'replies'} open already, the most at once. "
            "Close a tab or wait for a reply to finish, then reload this page."
        )
    reply = counters.lease(f"streams:reply:{message_id}", limit=per_reply, ttl=STREAM_SLOT_SECONDS)
    if reply is None:
        person.release()
        raise TooManyStreams(
            f"This reply is open in {per_reply} {'tab' if per_reply == 1 else 'tabs'} already, the most at once. "
            "Close one, then reload this page."
        )
    return [person, reply]
