"""How long a large import holds SQLite's write lock, and how long another writer waits meanwhile.

    .venv/bin/python bench/import_bench.py [--conversations 100] [--messages 1000]

Migrates a fresh SQLite database in a temporary directory, imports a chatsite export of
`--conversations` chains of `--messages` messages through `services.conversation_import`, and
reports the import's time, its longest write transaction (BEGIN IMMEDIATE to COMMIT) and the
longest wait of another process's connection that writes one row every 50 ms meanwhile.
"""

import argparse
import json
import os
import secrets
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def export(conversations: int, messages: int) -> bytes:
    items = [
        {
            "title": f"Imported {number}",
            "model": "mistralai/mistral-tiny",
            "created_at": "2025-01-01T00:00:00+00:00",
            "current": messages - 1,
            "messages": [
                {
                    "role": "user" if index % 2 == 0 else "assistant",
                    "content": f"message {index} of conversation {number}",
                    "parent": index - 1 if index else None,
                }
                for index in range(messages)
            ],
        }
        for number in range(conversations)
    ]
    return json.dumps({"format": "chatsite-export", "version": 1, "conversations": items}).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--messages", type=int, default=1000)
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="chatsite-import-bench-")
    try:
        run(args, Path(directory) / "db.sqlite3")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run(args, database: Path) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="chatsite.settings",
        DATABASE_URL=f"sqlite:///{database}",
        SECRET_KEY=secrets.token_urlsafe(50),
        DEBUG="0",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from conversations import services

    call_command("migrate", verbosity=0)
    raw = export(args.conversations, args.messages)
    user = get_user_model().objects.create_user(username="bench")

    holds, began = [], [None]

    def after_begin(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.startswith("BEGIN"):
            began[0] = time.monotonic()  # the write lock is held from here
        return result

    real_commit = connection.commit

    def commit():
        real_commit()
        if began[0] is not None:
            holds.append(time.monotonic() - began[0])
            began[0] = None

    connection.commit = commit
    waits, done = [], threading.Event()

    def other_writer():
        db = sqlite3.connect(database, timeout=120, isolation_level=None)
        db.execute("CREATE TABLE IF NOT EXISTS bench_probe (x)")
        while not done.is_set():
            started = time.monotonic()
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO bench_probe VALUES (1)")
            db.execute("COMMIT")
            waits.append(time.monotonic() - started)
            done.wait(0.05)

    writer = threading.Thread(target=other_writer)
    writer.start()
    started = time.monotonic()
    with connection.execute_wrapper(after_begin):
        services.conversation_import(owner=user, raw=raw)
    elapsed = time.monotonic() - started
    done.set()
    writer.join()
    print(f"file {len(raw) / 1e6:.1f} MB: {args.conversations} conversations x {args.messages} messages")
    print(f"import {elapsed:.1f} s in {len(holds)} transactions; longest write transaction {max(holds):.3f} s")
    print(f"another writer: {len(waits)} writes, longest wait {max(waits):.3f} s")


if __name__ == "__main__":
    main()
