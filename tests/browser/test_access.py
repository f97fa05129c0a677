"""Model access and off-boarding in Chromium: the model list offers only the models a person may
use, and a person deactivated while their chat is open is sent to the sign-in page at their next
click, with nothing stored or sent."""

import re

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from accounts import offboarding
from conversations.models import Conversation, Message
from providers.models import ChatModel
from tests.browser.helpers import COMPOSER, send, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MODEL_SELECT = "select[name=settings-model]"


@pytest.fixture
def kept_model(alice):
    ChatModel.objects.get_or_create(model_id="mistralai/mistral-tiny", defaults={"display_name": "Mistral Tiny"})
    research = Group.objects.create(name="research")
    alice.groups.add(research)
    kept = ChatModel.objects.create(model_id="team/secret-model", display_name="Team Secret", groups_only=True)
    kept.groups.add(research)
    return kept


def _offered(page) -> list[str]:
    return page.locator(f"{MODEL_SELECT} option").evaluate_all("options => options.map(o => o.value)")


def test_the_model_list_offers_a_kept_model_only_to_its_group(open_page, live_server, alice, bob, kept_model):
    for_alice, for_bob = open_page(), open_page()
    sign_in(for_alice, live_server, alice)
    sign_in(for_bob, live_server, bob)

    assert "team/secret-model" in _offered(for_alice)
    assert "team/secret-model" not in _offered(for_bob)
    assert "mistralai/mistral-tiny" in _offered(for_bob)


def test_a_person_deactivated_with_their_chat_open_lands_on_the_sign_in_page(page, live_server, alice, upstream):
    sign_in(page, live_server, alice)
    expect(page.locator(COMPOSER)).to_be_visible()

    offboarding.user_deactivate(user=alice)
    send(page, "Are you still there?")

    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    assert not Conversation.objects.filter(owner=alice).exists()
    assert not Message.objects.exists()
    assert upstream.requests == []
