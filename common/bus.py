"""A stream bus on Redis: per-key append-only streams, a control channel, and leases.

It knows no domain: a stream is named by an integer id, carries small string fields, is
bounded (MAXLEN) and expires (EXPIRE) so nothing outlives its use; control messages are
plain strings on one pub/sub channel; a lease is a member of one sorted set whose score is
the time it runs out, so finding every expired lease is one range query and not a scan.

Every Redis failure is raised as `BusUnavailable`, one error type for the callers, who each
decide how to carry on without the bus (the reply is always in the database too).
"""

import threading
import time
from collections.abc import Callable, Iterable

import redis

STREAM_MAXLEN = 20_000  # entries kept per stream; a follower that falls further behind uses the database
STREAM_TTL_SECONDS = 3600  # a stream nobody writes to any more (its writer died) goes away
FINISHED_TTL_SECONDS = 60  # after its end, long enough for a reconnect to read the rest
LEASE_SET_TTL_SECONDS = 600  # the lease set itself, once no process renews anything


class BusUnavailable(Exception):
    """Redis could not be reached or answered with an error."""


class Bus:
    """One Redis client for streams, control messages and leases, under a key prefix."""

    def __init__(self, url: str, prefix: str = "chatsite:bus") -> None:
        # Short timeouts: the bus is an accelerator, and a writer must never wait long on it.
        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=0.5, socket_timeout=2.0, health_check_interval=10, decode_responses=True
        )
        self.prefix = prefix
        self.channel = f"{prefix}:control"
        self.leases = f"{prefix}:leases"

    def stream_key(self, stream_id: int) -> str:
        return f"{self.prefix}:stream:{stream_id}"

    # --- streams -------------------------------------------------------------------------
    def reset(self, stream_id: int) -> None:
        """Start a stream afresh: an earlier writer's entries under the same id are dropped."""
        with _translated():
            self.client.delete(self.stream_key(stream_id))

    def append(self, stream_id: int, fields: dict[str, str], *, ttl: int | None = STREAM_TTL_SECONDS) -> None:
        """Add one entry to the end of a stream (bounded in length), and push back its expiry to
        `ttl` seconds from now; with `ttl=None` the expiry stays as it is (one command, not two)."""
        key = self.stream_key(stream_id)
        with _translated():
            if ttl is None:
                self.client.xadd(key, fields, maxlen=STREAM_MAXLEN, approximate=True)
                return
            pipe = self.client.pipeline(transaction=False)
            pipe.xadd(key, fields, maxlen=STREAM_MAXLEN, approximate=True)
            pipe.expire(key, ttl)
            pipe.execute()

    def read(self, stream_id: int, after: str = "0", *, block_ms: int = 1000) -> list[tuple[str, dict[str, str]]]:
        """The entries after the entry id `after` ("0": from the start), waiting up to `block_ms`
        for one to arrive; an empty list when none did."""
        with _translated():
            answer = self.client.xread({self.stream_key(stream_id): after}, block=block_ms, count=1000)
        return answer[0][1] if answer else []

    # --- control messages ----------------------------------------------------------------
    def send(self, message: str) -> None:
        """Publish a control message to every listening process."""
        with _translated():
            self.client.publish(self.channel, message)

    def listen(self, on_message: Callable[[str], None], *, ready: threading.Event | None = None) -> None:
        """Call `on_message` for each control message, for ever (run it in a daemon thread);
        a lost connection is opened again after a second."""
        while True:
            try:
                pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                if ready is not None:
                    ready.set()
                for message in pubsub.listen():
                    if message.get("type") == "message":
                        on_message(message["data"])
            except redis.RedisError:
                time.sleep(1.0)

    # --- leases --------------------------------------------------------------------------
    def renew(self, lease_ids: Iterable[int], ttl: float) -> None:
        """Hold the leases of `lease_ids` for `ttl` seconds more from now."""
        until = time.time() + ttl
        mapping = {str(lease_id): until for lease_id in lease_ids}
        if not mapping:
            return
        with _translated():
            pipe = self.client.pipeline(transaction=False)
            pipe.zadd(self.leases, mapping)
            pipe.expire(self.leases, LEASE_SET_TTL_SECONDS)
            pipe.execute()

    def release(self, lease_id: int) -> None:
        with _translated():
            self.client.zrem(self.leases, str(lease_id))

    def held(self, lease_id: int) -> bool:
        """Whether the lease is held and has not run out."""
        with _translated():
            until = self.client.zscore(self.leases, str(lease_id))
        return until is not None and until > time.time()

    def expired(self) -> list[int]:
        """Every lease that ran out and was not released (its holder died, or could not renew)."""
        with _translated():
            members = self.client.zrangebyscore(self.leases, "-inf", time.time())
        return [int(member) for member in members]


class _translated:
    """Raise every redis-py error as BusUnavailable."""

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if error is not None and isinstance(error, redis.RedisError):
            raise BusUnavailable(str(error)) from error
        return False
