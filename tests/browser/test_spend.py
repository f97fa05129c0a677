"""Tried as a new admin would, in Chromium: set a price and a team budget of a few cents, watch a
person's spend rise as they chat, see the warning at 80 % and the refusal at 100 %."""

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from providers.models import ChatModel
from tests.browser.helpers import SAVED, send, sign_in
from tests.conftest import PASSWORD, settle

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Each reply: 1,000 tokens in and 1,000 out, so at 5 and 15 per million it costs 0.02.
THOUSAND_EACH = {"prompt_tokens": 1000, "completion_tokens": 1000, "total_tokens": 2000}


def test_a_team_budget_of_a_few_cents_warns_then_refuses(open_page, live_server, upstream, admin_user, alice):
    # The migration's catalogue row is gone after any earlier test that flushed the database.
    ChatModel.objects.get_or_create(model_id="mistralai/mistral-tiny", defaults={"display_name": "Mistral Tiny"})
    team = Group.objects.create(name="team")
    alice.groups.add(team)
    admin = open_page()
    admin.goto("/admin/login/")
    admin.fill("#id_username", admin_user.username)
    admin.fill("#id_password", PASSWORD)
    admin.click("input[type=submit]")
    admin.goto("/admin/providers/chatmodel/")
    admin.get_by_role("link", name="Mistral Tiny").click()
    admin.fill("#id_input_price", "5")
    admin.fill("#id_output_price", "15")
    admin.click("input[name=_save]")
    admin.goto("/admin/usage/groupbudget/add/")
    admin.select_option("#id_group", label="team")
    admin.fill("#id_monthly_budget", "0.05")
    admin.click("input[name=_save]")
    expect(admin.locator("#result_list")).to_contain_text("team")

    person = open_page()
    sign_in(person, live_server, alice)
    for turn in range(1, 4):
        upstream.stream(f"Answer {turn}", usage=THOUSAND_EACH)
        send(person, f"Question {turn}")
        expect(person.locator(f"{SAVED}.is-complete")).to_have_count(2 * turn)  # question and answer
        settle()
        if turn == 2:
            admin.goto("/admin/usage/usage/")
            expect(admin.locator("#usage-budget-warnings")).to_contain_text(
                "The group “team” has spent 0.0400 EUR of its budget of 0.0500 EUR for this month (80 %)"
            )
    person.goto("/accounts/usage/")
    expect(person.locator("#your-spend")).to_contain_text("0.0600 EUR")
    expect(person.locator("#your-budgets")).to_contain_text("Your group “team”: 0.0500 EUR")

    person.go_back()
    send(person, "One too many")

    expect(person.locator("#composer #composer-errors .form-error")).to_contain_text(
        "Your group “team” has spent its budget of 0.0500 EUR for this month, so this message was not sent."
    )
    assert len(upstream.completion_requests) == 3
    admin.goto("/admin/usage/usage/")
    expect(admin.locator("#spend-chart rect")).to_have_count(30)
    expect(admin.locator("#usage-spend-group")).to_contain_text("team")
