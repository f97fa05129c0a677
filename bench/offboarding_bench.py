#!/usr/bin/env python
"""What one deactivation costs: `accounts.offboarding.sessions_end` reading through N unexpired sessions.

Django keeps a session's user only inside its signed data, so ending one person's sessions decodes
every unexpired one (an HMAC check each) and deletes the person's together. This times that, and
the model-access check before a send (`providers.catalogue.may_use`, open and kept models), on a
fresh SQLite database in a temporary directory.

    .venv/bin/python bench/offboarding_bench.py
    .venv/bin/python bench/offboarding_bench.py --sessions 1000 10000 100000
"""

import argparse
import base64
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PEOPLE = 100


def _setup(directory: str) -> None:
    os.environ.update(
        {
            "DEBUG": "0",
            "SECRET_KEY": base64.urlsafe_b64encode(os.urandom(40)).decode(),
            "CHATSITE_ENV_FILE": os.path.join(directory, "no-env-file"),
            "DATABASE_URL": f"sqlite:///{directory}/db.sqlite3",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        }
    )
    os.environ.pop("REDIS_URL", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _sessions(count: int, people: list) -> None:
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    Session.objects.all().delete()
    store, expire = SessionStore(), timezone.now() + timedelta(days=14)
    rows = []
    for number in range(count):
        person = people[number % len(people)]
        data = {"_auth_user_id": str(person.pk), "_auth_user_backend": "x", "_auth_user_hash": "0" * 64}
        rows.append(Session(session_key=f"bench{number:027d}", session_data=store.encode(data), expire_date=expire))
    Session.objects.bulk_create(rows, batch_size=5000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1000, 10000, 100000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        _setup(directory)
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group

        from accounts.offboarding import sessions_end
        from providers import catalogue
        from providers.models import ChatModel

        people = [get_user_model().objects.create_user(username=f"person{n}") for n in range(PEOPLE)]
        for count in args.sessions:
            _sessions(count, people)
            started = time.perf_counter()
            ended = sessions_end(user=people[7])
            seconds = time.perf_counter() - started
            print(f"sessions_end: {count:>7,} unexpired sessions read, {ended:,} ended, {seconds:.2f} s")

        group = Group.objects.create(name="bench")
        kept = ChatModel.objects.create(model_id="bench/kept", display_name="Kept", groups_only=True)
        kept.groups.add(group)
        ChatModel.objects.get_or_create(model_id="bench/open", defaults={"display_name": "Open"})
        person = people[0]
        for model_id in ("bench/open", "bench/kept"):
            catalogue.may_use(person, model_id)  # the catalogue is cached, as every send finds it
            reps, started = 2000, time.perf_counter()
            for _ in range(reps):
                catalogue.may_use(person, model_id)
            per_call = (time.perf_counter() - started) / reps * 1e6
            print(f"may_use({model_id}): {per_call:.0f} µs per send")


if __name__ == "__main__":
    main()
