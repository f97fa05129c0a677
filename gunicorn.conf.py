"""gunicorn settings for chatsite, read by `make run` and the Procfile alike.

Streamed replies hold one connection (and one worker thread) each for as long as a reply is
written, and the work is waiting on sockets, not computing. So chatsite runs the gthread
worker with many threads. One process by default: a reply generated in the same process as
the stream that follows it is relayed from memory, piece by piece; a stream served by another
process follows it over the Redis bus (REDIS_URL), or without Redis reads it from the database
every CHAT_STREAM_SAVE_INTERVAL_MS. Raise WEB_CONCURRENCY for more processes when requests
other than streams need more CPU.

SIGTERM (a restart, a deploy) is graceful: the listening socket is closed at once, so no new
request (and no new reply) reaches the process; open streams and running replies get
graceful_timeout to end. `worker_exit` then waits for the replies still being written and says
so in the log; a reply that outlives graceful_timeout is killed with the worker, and with the
bus its lease runs out and it is shown interrupted with Retry within seconds.
"""

import os
import sys
from pathlib import Path

from chatsite.env import load_env_file

# The same settings file as the app (real environment variables win), so .env can tune these too.
load_env_file(Path(__file__).resolve().parent / ".env")

bind = os.environ.get("GUNICORN_BIND") or f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
# Open streams at once per process, plus room for the page and form requests beside them.
threads = int(os.environ.get("GUNICORN_THREADS", "160"))
# gthread's timeout is the worker's heartbeat, not a limit on a request: long streams are safe.
timeout = 60
# On a restart, replies being written get this long to finish and be saved.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "90"))
keepalive = 5
accesslog = "-"
# No control socket: its default path is shared by every gunicorn of the same user.
control_socket_disable = True
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def when_ready(server):
    # The address in words once it is bound: HOST and PORT may come from .env, which make does not read.
    for listener in server.LISTENERS:
        server.log.info("chatsite is serving on %s/", listener)


def post_fork(server, worker):
    # Before the worker's threads start: one malloc arena per core, not eight, so the memory a
    # burst's threads free is reused by the next burst instead of fragmenting more arenas.
    from common import memory

    memory.limit_arenas(2)


def post_worker_init(worker):
    # The app is loaded: its modules, templates and settings live as long as the process. Frozen,
    # the garbage collector's full passes skip them (one took ~55 ms of the worker's CPU before,
    # ~13 ms after, on this bench machine) instead of walking them again and again.
    import gc

    gc.freeze()


def worker_exit(server, worker):
    # Streams have ended; replies may still be writing (a reply outlives the stream whose browser
    # went away). The master kills the worker at graceful_timeout, whatever is left.
    generation = sys.modules.get("conversations.generation")
    if generation is None:  # the master (for a worker already gone), or the app never loaded
        return
    running = generation.drain(0)
    if running:
        server.log.info("waiting for %d replies being written before exiting", running)
        server.log.info("replies left unfinished at exit: %d", generation.drain(graceful_timeout))
