"""The database settings for a DATABASE_URL: SQLite (the embedded default) or PostgreSQL, each tuned
for many threads in a few gunicorn processes."""

import os
import tempfile
from pathlib import Path

import dj_database_url


def database_settings(url: str, *, conn_max_age: int, pool_max: int) -> dict:
    """Django's DATABASES["default"] for `url`, with SQLite's locking and PostgreSQL's pool set."""
    database = dj_database_url.parse(url, conn_max_age=conn_max_age, conn_health_checks=True)
    if database["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets readers work while one writer writes; IMMEDIATE takes the write lock at
        # BEGIN, so concurrent writers queue for up to `timeout` seconds instead of failing
        # halfway through a transaction with "database is locked". Connections are kept per
        # thread (DATABASE_CONN_MAX_AGE), which saves opening the file on every request.
        database["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
        # pytest's in-memory SQLite would hide locking: tests use a file database too, one per
        # test process so that two test runs on one machine do not share it.
        database["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"chatsite-test-{os.getpid()}.sqlite3")}
        Path(database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Each PostgreSQL connection is a server process, and PostgreSQL allows 100 by default: with
    # many threads per gunicorn process and several processes, a connection kept per thread would
    # run out. So connections come from a pool per process (psycopg_pool), `pool_max` at most;
    # threads take one for a query or a transaction and give it back, including while a reply
    # waits on the upstream (conversations/generation/). 0 turns the pool off.
    if database["ENGINE"] == "django.db.backends.postgresql" and pool_max:
        database["CONN_MAX_AGE"] = 0  # required with a pool: "closing" gives it back
        database.setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": pool_max,
            "timeout": 30,  # seconds a thread waits for a free connection before failing
        }
    return database
