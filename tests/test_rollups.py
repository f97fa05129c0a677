"""The running totals per day equal the sum of the usage rows: after a random run of calls, stops
and failures through the chat page and the API, under concurrent writers, and after
`rebuild_usage_rollups`. The suite runs this on SQLite and, with DATABASE_URL, on PostgreSQL."""

import json
import random
import threading
import time
import uuid
from collections import defaultdict
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from api.tokens import token_create
from conversations.models import Conversation, Message
from providers.models import ChatModel
from tests.conftest import CheckedClient, settle
from usage import quotas
from usage.models import Rollup, Usage
from usage.money import to_nanos
from usage.services import record

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "mistralai/mistral-tiny"
WORDS = " ".join(f"word{i}" for i in range(40))


def _expected() -> dict[tuple, list[int]]:
    """(scope, owner, day) -> [calls, tokens, cost in nano-units], summed in Python from the rows."""
    groups = defaultdict(set)
    for user_id, group_id in Group.user_set.through.objects.values_list("user_id", "group_id"):
        groups[user_id].add(group_id)
    sums = defaultdict(lambda: [0, 0, 0])
    for row in Usage.objects.all():
        owners = [("site", 0)]
        if row.user_id is not None:
            owners += [("user", row.user_id), *(("group", group) for group in groups[row.user_id])]
        for scope, owner in owners:
            found = sums[(scope, owner, timezone.localdate(row.created_at))]
            found[0] += 1
            found[1] += row.total_tokens
            found[2] += to_nanos(row.cost)
    return dict(sums)


def _rollups() -> dict[tuple, list[int]]:
    return {(row.scope, row.owner_id, row.day): [row.calls, row.tokens, row.cost_nanos] for row in Rollup.objects.all()}


def _wait_for_text(reply: Message, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not Message.objects.get(pk=reply.pk).content and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.fixture
def priced():
    # Prices with many places, so that rounding each row to a nano-unit is exercised.
    ChatModel.objects.update_or_create(
        model_id=MODEL,
        defaults={"display_name": "Tiny", "input_price": Decimal("0.333333"), "output_price": Decimal("1.777777")},
    )


def test_the_totals_equal_the_rows_after_a_random_run_of_calls_stops_and_failures(
    alice, bob, upstream, priced, settings
):
    settings.AIMLAPI_RETRIES = 0  # a scripted failure ends as a failed call, not a retried one
    team, other = Group.objects.create(name="team"), Group.objects.create(name="other")
    alice.groups.add(team)
    bob.groups.add(team, other)
    clients = {}
    for person in (alice, bob):
        clients[person.pk] = CheckedClient()
        clients[person.pk].force_login(person)
    tokens = {person.pk: token_create(owner=person, name="script")[1] for person in (alice, bob)}
    seed = random.randrange(10**6)
    chance = random.Random(seed)
    done = defaultdict(int)

    for _ in range(14):
        person = chance.choice((alice, bob))
        step = chance.choice(("chat", "chat-estimated", "chat-fails", "chat-stopped", "api", "api-fails"))
        done[step] += 1
        if step == "api":
            upstream.reply(" ".join(WORDS.split()[: chance.randint(1, 30)]))
        elif step == "api-fails":
            upstream.fail(400)
        elif step == "chat":
            upstream.stream(WORDS.split()[: chance.randint(1, 30)])
        elif step == "chat-estimated":
            upstream.stream(WORDS.split()[: chance.randint(1, 30)], usage=False)
        elif step == "chat-fails":
            upstream.fail(400)
        else:
            upstream.stream(WORDS, delay=0.05)
        if step.startswith("api"):
            body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
            CheckedClient().generic(
                "POST",
                "/v1/chat/completions",
                json.dumps(body),
                content_type="application/json",
                headers={"Authorization": f"Bearer {tokens[person.pk]}"},
            )
            continue
        clients[person.pk].post("/c/", {"content": "Hello", "client_id": str(uuid.uuid4())}, htmx=True)
        if step == "chat-stopped":
            reply = Message.objects.filter(conversation__owner=person, role="assistant").latest("id")
            _wait_for_text(reply)
            clients[person.pk].post(f"/c/{reply.conversation_id}/messages/{reply.pk}/stop/", htmx=True)
        settle()

    rows = Usage.objects.all()
    assert rows.count() == 14, f"seed {seed}: {dict(done)}"
    assert rows.filter(cost__gt=0).exists()
    assert _rollups() == _expected(), f"seed {seed}: {dict(done)}"
    assert Conversation.objects.count() == 14 - done["api"] - done["api-fails"]


def test_concurrent_calls_lose_no_increment(alice, bob, priced):
    team = Group.objects.create(name="team")
    alice.groups.add(team)
    bob.groups.add(team)
    errors = []

    def calls(user_id: int, seed: int) -> None:
        chance = random.Random(seed)
        try:
            for _ in range(15):
                record(
                    user_id=user_id,
                    key=None,
                    model=MODEL,
                    status=chance.choice(("complete", "stopped", "error")),
                    prompt_tokens=chance.randint(0, 5000),
                    completion_tokens=chance.randint(0, 5000),
                )
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=calls, args=(user.pk, n)) for n, user in enumerate([alice, bob] * 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Usage.objects.count() == 8 * 15
    assert _rollups() == _expected()
    assert Rollup.objects.get(scope="site").calls == 120  # one day, every call


def test_the_rebuild_command_makes_the_totals_from_the_rows_again(alice, bob, priced, capsys):
    team = Group.objects.create(name="team")
    alice.groups.add(team)
    for user, days in ((alice, 0), (alice, 3), (bob, 0), (bob, 40), (None, 1)):
        usage = record(user_id=user.pk if user else None, key=None, model=MODEL, status="complete", total_tokens=50)
        Usage.objects.filter(pk=usage.pk).update(created_at=usage.created_at - timezone.timedelta(days=days))
    Rollup.objects.filter(scope="user").update(tokens=1)  # wrong on purpose
    Rollup.objects.filter(scope="site").delete()
    assert _rollups() != _expected()

    call_command("rebuild_usage_rollups")

    assert _rollups() == _expected()
    assert "Rebuilt" in capsys.readouterr().out
    assert quotas.tokens_today_and_this_month(alice)[0] == 50


def test_the_checks_read_a_handful_of_rows_however_many_calls(alice, priced, settings, django_assert_max_num_queries):
    settings.CHAT_MONTHLY_TOKEN_QUOTA = 10**9
    settings.CHAT_MONTHLY_BUDGET = Decimal("1000")
    for _ in range(30):
        record(user_id=alice.pk, key=None, model=MODEL, status="complete", prompt_tokens=10, completion_tokens=10)

    with django_assert_max_num_queries(2):  # own quota row and group budgets, then the totals
        quotas.check_quota(alice)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {Rollup._meta.db_table} WHERE scope = 'user'")  # noqa: S608
        assert cursor.fetchone()[0] == 1  # 30 calls today, one total
