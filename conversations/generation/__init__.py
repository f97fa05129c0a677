"""Assistant replies are generated in background threads, independent of any browser connection.

`start` runs one reply (pool): it streams from the upstream (turn) and keeps the text so far in
this process's memory for followers (live). One saver thread writes the text of every live
reply of the process to the database every CHAT_STREAM_SAVE_INTERVAL_MS, in one transaction
(saver), so a hundred replies streaming at once cost a few writes a second, and no reply waits
on the database between two pieces of its text. The final save writes the rendered HTML too.
`follow` gives the text of a reply from an offset on, then ends when the reply is final: from
memory when the reply is generated in this process (each piece is relayed as it arrives), from
the database otherwise (another process generates it; it is read at the save interval). A
browser that goes away changes nothing: the reply is finished and saved either way. Each call
writes a usage row (calls); a first reply may then get a model-made title (titles).

With the Redis bus (relay; CHAT_BUS_REDIS_URL, REDIS_URL by default), every piece is also
appended to the reply's stream, and `follow` on another process reads it there as it arrives;
the database is then the record, not the way across.

Stop (`stop`) closes the upstream connection of a reply generated in this process (`cancel`);
one generated elsewhere hears it at once over the bus, and at the saver's next round through
`stop_requested` in the database either way. A process that exits waits for its replies to finish
(the pool's threads are not daemons); one that is killed leaves them unfinished: with the bus
their leases run out and they are marked interrupted with Retry within seconds, without it
they are shown so after the stale limit.
"""

from conversations.generation.live import Waiting, follow
from conversations.generation.pool import UNEXPECTED_ERROR, cancel, drain, start, stop
from conversations.generation.slots import TooManyStreams, stream_slots

__all__ = [
    "UNEXPECTED_ERROR",
    "TooManyStreams",
    "Waiting",
    "cancel",
    "drain",
    "follow",
    "start",
    "stop",
    "stream_slots",
]
