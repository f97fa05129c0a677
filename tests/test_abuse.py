"""Abuse of the site by a signed-in person or a stranger: redirects to other sites, sign-in
bursts, stream floods and bodies that are not text."""

import pytest

from conversations.models import Conversation

pytestmark = pytest.mark.django_db


# --- Redirects stay on this site ---------------------------------------------------------


@pytest.fixture
def conversation(alice):
    return Conversation.objects.create(owner=alice, title="Mine")


@pytest.mark.parametrize("action", ["pin", "archive"])
@pytest.mark.parametrize(
    "elsewhere",
    ["https://elsewhere.example/", "//elsewhere.example/", "/\\elsewhere.example/", "http:elsewhere.example"],
)
def test_it_does_not_redirect_to_another_site(client_alice, conversation, action, elsewhere):
    response = client_alice.post(f"/c/{conversation.pk}/{action}/", {f"{action}ed": "1", "next": elsewhere})

    assert response.status_code == 302
    assert response["Location"] == conversation.get_absolute_url()


def test_it_follows_a_next_on_this_site(client_alice, conversation):
    response = client_alice.post(f"/c/{conversation.pk}/pin/", {"pinned": "1", "next": "/?archived=1"})

    assert response.status_code == 302
    assert response["Location"] == "/?archived=1"
    conversation.refresh_from_db()
    assert conversation.pinned_at is not None
