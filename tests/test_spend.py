"""Prices, money budgets and spend: the price in force is copied onto each usage row, budgets
refuse before anything is sent, and people and admins see what was spent."""

import json
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured

from api.tokens import token_create
from chatsite.env import env_decimal
from conversations.models import Conversation
from providers.models import ChatModel
from tests.conftest import CheckedClient, settle
from usage.models import GroupBudget, Usage, UserQuota
from usage.money import cost_of, format_money

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "mistralai/mistral-tiny"
THOUSAND_EACH = {"prompt_tokens": 1000, "completion_tokens": 1000, "total_tokens": 2000}


@pytest.fixture
def priced():
    """The chat's model at 5 per million input tokens and 15 per million output: 0.02 a call of THOUSAND_EACH."""
    model, _ = ChatModel.objects.update_or_create(
        model_id=MODEL, defaults={"display_name": "Tiny", "input_price": Decimal("5"), "output_price": Decimal("15")}
    )
    return model


@pytest.fixture
def team(alice):
    group = Group.objects.create(name="team")
    alice.groups.add(group)
    return group


def _start(client, content="Hello"):
    return client.post("/c/", {"content": content, "client_id": str(uuid.uuid4())}, htmx=True)


def _ask_api(user, content="hi"):
    _, plain = token_create(owner=user, name=f"script-{uuid.uuid4().hex[:6]}")
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}]}
    return CheckedClient().generic(
        "POST",
        "/v1/chat/completions",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {plain}"},
    )


# --- Prices ----------------------------------------------------------------------------------
def test_the_price_in_force_is_copied_onto_the_row_and_a_later_edit_leaves_it(client_alice, upstream, priced):
    upstream.stream("First answer", usage=THOUSAND_EACH)
    _start(client_alice)
    settle()
    priced.input_price, priced.output_price = Decimal("1"), Decimal("2")
    priced.save()
    upstream.stream("Second answer", usage=THOUSAND_EACH)
    _start(client_alice)
    settle()

    first, second = Usage.objects.order_by("id")
    assert (first.input_price, first.output_price, first.cost) == (Decimal("5"), Decimal("15"), Decimal("0.02"))
    assert (second.input_price, second.output_price, second.cost) == (Decimal("1"), Decimal("2"), Decimal("0.003"))


def test_the_api_path_prices_its_rows_the_same_way(alice, upstream, priced):
    upstream.reply("From the API", usage=THOUSAND_EACH)

    response = _ask_api(alice)

    assert response.status_code == 200
    row = Usage.objects.get()
    assert (row.source, row.input_price, row.cost) == ("api", Decimal("5"), Decimal("0.02"))


def test_estimated_tokens_are_priced_the_same_way_and_stay_marked(client_alice, upstream, priced):
    upstream.stream("An answer the upstream sent no usage for", usage=False)
    _start(client_alice)
    settle()

    row = Usage.objects.get()
    assert row.tokens_estimated and row.prompt_tokens > 0 and row.completion_tokens > 0
    expected = cost_of(
        prompt_tokens=row.prompt_tokens, completion_tokens=row.completion_tokens, input_price=5, output_price=15
    )
    assert row.cost == expected > 0


def test_a_model_without_a_price_costs_nothing_and_the_usage_page_says_so(client_alice, client_admin, upstream):
    ChatModel.objects.update_or_create(model_id=MODEL, defaults={"input_price": None, "output_price": None})
    upstream.stream("Free", usage=THOUSAND_EACH)
    _start(client_alice)
    settle()

    row = Usage.objects.get()
    page = client_admin.get("/admin/usage/usage/").content.decode()
    assert (row.input_price, row.output_price, row.cost) == (None, None, 0)
    assert f"No price is set for {MODEL}: their calls cost 0." in page


def test_micro_cents_are_kept_and_rounded_once():
    cheap = cost_of(prompt_tokens=1, completion_tokens=1, input_price=Decimal("0.02"), output_price=Decimal("0.01"))
    assert cheap == Decimal("0.00000003")  # 3 micro-cents
    below_a_nano = cost_of(prompt_tokens=1, completion_tokens=0, input_price=Decimal("0.0004"), output_price=None)
    assert below_a_nano == 0
    assert format_money(Decimal("0.0312")) == "0.0312 EUR" and format_money(Decimal("1234.5")) == "1,234.50 EUR"


# --- Budgets ---------------------------------------------------------------------------------
def test_a_team_budget_of_a_few_cents_warns_at_80_percent_and_refuses_at_100(
    client_alice, client_admin, alice, team, upstream, priced
):
    GroupBudget.objects.create(group=team, monthly_budget=Decimal("0.05"))
    for _ in range(2):
        upstream.stream("Answer", usage=THOUSAND_EACH)
        assert _start(client_alice).status_code == 200
        settle()

    warned = client_admin.get("/admin/usage/usage/").content.decode()
    mine = client_alice.get("/accounts/usage/").content.decode()
    upstream.stream("Answer", usage=THOUSAND_EACH)
    assert _start(client_alice).status_code == 200  # 0.04 of 0.05: still allowed
    settle()
    sent = len(upstream.completion_requests)
    refused = _start(client_alice, "One too many")

    assert "The group “team” has spent 0.0400 EUR of its budget of 0.0500 EUR for this month (80 %)" in warned
    assert "Your group “team”: 0.0500 EUR" in mine and "0.0100 EUR" in mine  # what is left
    assert refused.status_code == 429
    assert (
        "Your group “team” has spent its budget of 0.0500 EUR for this month, so this message was not sent."
        in refused.content.decode()
    )
    assert "One too many" in refused.content.decode()  # still in the composer
    assert len(upstream.completion_requests) == sent == 3  # nothing more went upstream
    assert Conversation.objects.count() == 3 and Usage.objects.count() == 3


def test_a_persons_own_budget_refuses_the_api_with_nothing_sent_or_stored(alice, upstream, priced):
    UserQuota.objects.create(user=alice, daily_budget=Decimal("0.02"))
    upstream.reply("Spent", usage=THOUSAND_EACH)
    assert _ask_api(alice).status_code == 200

    refused = _ask_api(alice)

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "quota_exceeded"
    assert "You have spent your budget of 0.0200 EUR for today" in refused.json()["error"]["message"]
    assert len(upstream.completion_requests) == 1 and Usage.objects.count() == 1


def test_the_site_budget_counts_everyone_and_a_persons_default_comes_from_settings(
    client_alice, client_bob, alice, bob, upstream, priced, settings
):
    settings.CHAT_SITE_MONTHLY_BUDGET = Decimal("0.03")
    upstream.stream("Alice's", usage=THOUSAND_EACH)
    _start(client_alice)
    settle()
    upstream.stream("Bob's", usage=THOUSAND_EACH)
    _start(client_bob)
    settle()

    refused = _start(client_alice)
    settings.CHAT_SITE_MONTHLY_BUDGET = Decimal("0")
    settings.CHAT_MONTHLY_BUDGET = Decimal("0.02")  # each person's default
    UserQuota.objects.create(user=bob, monthly_budget=Decimal("0"))  # bob's own: no limit

    assert "This site has spent its budget of 0.0300 EUR for this month" in refused.content.decode()
    assert _start(client_alice).status_code == 429
    assert _start(client_bob).status_code == 200
    settle()


def test_a_person_sees_their_own_spend_and_not_anyone_elses(client_alice, client_bob, upstream, priced, settings):
    settings.CHAT_MONTHLY_BUDGET = Decimal("1")
    upstream.stream("Alice's", usage=THOUSAND_EACH)
    _start(client_alice)
    settle()

    alices = client_alice.get("/accounts/usage/").content.decode()
    bobs = client_bob.get("/accounts/usage/").content.decode()

    assert "You have spent <strong>0.0200 EUR</strong> this month" in alices
    assert "0.9800 EUR" in alices  # left of the budget of 1
    assert "You have spent <strong>0.00 EUR</strong> this month" in bobs
    assert "1.00 EUR" in bobs and "0.0200" not in bobs


def test_the_usage_page_shows_spend_per_person_group_model_and_key_and_filters_by_group(
    client_admin, client_alice, client_bob, team, upstream, priced
):
    upstream.stream("Alice's", usage=THOUSAND_EACH)
    _start(client_alice)
    settle()
    upstream.stream("Bob's", usage={"prompt_tokens": 2000, "completion_tokens": 0, "total_tokens": 2000})
    _start(client_bob)
    settle()

    page = client_admin.get("/admin/usage/usage/").content.decode()
    teams = client_admin.get(f"/admin/usage/usage/?group={team.pk}").content.decode()
    export = client_admin.get("/admin/usage/usage/export.csv")
    lines = b"".join(export.streaming_content).decode().splitlines()

    people = page.split('id="usage-spend-user"')[1].split("</table>")[0]
    assert people.index("alice") < people.index("bob") and "0.0200 EUR" in people and "0.0100 EUR" in people
    groups = page.split('id="usage-spend-group"')[1].split("</table>")[0]
    assert "team" in groups and "in no group" in groups
    assert MODEL in page.split('id="usage-spend-model"')[1].split("</table>")[0]
    assert "0.0300 EUR in all" in page and "0.0200 EUR in all" in teams
    spend_chart = page.split('id="spend-chart"')[1].split("</svg>")[0]
    assert "0.0300 EUR</title>" in spend_chart and 'class="usage-chart__day"' in spend_chart
    assert lines[0].endswith(",input_price,output_price,cost,currency")
    assert lines[1].endswith(",5.000000,15.000000,0.020000000,EUR")


def test_budgets_and_the_currency_must_be_amounts():
    with pytest.raises(ImproperlyConfigured, match="CHAT_TEST_BUDGET"):
        env_decimal("CHAT_TEST_BUDGET", "-1", minimum="0")
    with pytest.raises(ImproperlyConfigured, match="an amount such as"):
        env_decimal("CHAT_TEST_BUDGET", "lots", minimum="0")
    assert env_decimal("CHAT_TEST_BUDGET", "12.50", minimum="0") == Decimal("12.50")
