#!/usr/bin/env python
"""What the admin's rules cost each message: the checks before a send and the key lookup before a reply.

Every message now passes `services.turns._check_can_ask` (is the model turned off? the person's tokens
today and this month against their quota, from `Usage`; the rate limit in the cache) before it
is stored, and every reply calls `keys.resolve_key` (own key, group key, site default; one
Fernet decryption) before the upstream call. This measures both, in-process, on a fresh SQLite
database in a temporary directory, for a person with 0 to N usage rows spread over 30 days
(the quota query reads the rows of this month through the `usage_user_time` index).

    .venv/bin/python bench/admin_checks_bench.py
    .venv/bin/python bench/admin_checks_bench.py --rows 0 10000 100000 --reps 300
"""

import argparse
import base64
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _setup(directory: str) -> None:
    os.environ.update(
        {
            "DEBUG": "0",
            "SECRET_KEY": base64.urlsafe_b64encode(os.urandom(40)).decode(),
            "FIELD_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "CHATSITE_ENV_FILE": os.path.join(directory, "no-env-file"),
            "DATABASE_URL": f"sqlite:///{directory}/db.sqlite3",
            # Limits high enough never to refuse: the bench measures the checking, not a refusal.
            "CHAT_DAILY_TOKEN_QUOTA": "2000000000",
            "CHAT_MONTHLY_TOKEN_QUOTA": "2000000000",
            "CHAT_RATE_LIMIT_PER_MINUTE": "2000000000",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        }
    )
    os.environ.pop("REDIS_URL", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _timed(function, reps: int) -> tuple[float, float]:
    samples = []
    for _ in range(reps):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[0, 10_000, 100_000], help="usage rows of the person")
    parser.add_argument("--reps", type=int, default=300)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="chatsite-admin-bench-") as directory:
        _setup(directory)
        from datetime import timedelta

        from django.contrib.auth.models import Group, User
        from django.utils import timezone

        from conversations.services import turns
        from providers import keys
        from providers.models import ProviderKey
        from usage.models import Usage

        group = Group.objects.create(name="team")
        key = ProviderKey(label="Team key", base_url="http://127.0.0.1:9/v1")
        keys.set_secret(key, "sk-bench-" + base64.urlsafe_b64encode(os.urandom(24)).decode())
        key.save()
        key.groups.add(group)
        ProviderKey.objects.create(label="Default", is_default=True, secret_encrypted=key.secret_encrypted, last4="x")

        print(f"{'usage rows':>10} | {'pre-send checks (ms) median / p99':>34} | {'resolve_key (ms) median / p99':>30}")
        print(f"{'-' * 10}-+-{'-' * 34}-+-{'-' * 30}")
        now = timezone.now()
        spread = random.Random(3)  # noqa: S311 - test data, not secrets
        for count in args.rows:
            user = User.objects.create_user(username=f"person{count}")
            user.groups.add(group)
            Usage.objects.bulk_create(
                [
                    Usage(
                        user=user,
                        key=key,
                        model="mistralai/mistral-tiny",
                        status="complete",
                        total_tokens=spread.randint(10, 2000),
                        created_at=now - timedelta(seconds=spread.randint(0, 30 * 86400)),
                    )
                    for _ in range(count)
                ],
                batch_size=5000,
            )
            check = _timed(lambda user=user: turns._check_can_ask(user, "mistralai/mistral-tiny"), args.reps)
            resolve = _timed(lambda user=user: keys.resolve_key(user), args.reps)
            if keys.resolve_key(user).provider_key != key:
                raise SystemExit("resolve_key did not find the group's key: the figures would be wrong")
            print(f"{count:>10} | {check[0]:>15.3f} / {check[1]:<16.3f} | {resolve[0]:>13.3f} / {resolve[1]:<14.3f}")


if __name__ == "__main__":
    main()
