"""Team sign-in end to end: Chromium clicks "Sign in with Test IdP", signs in at a real OpenID Connect
provider (node-oidc-provider, tests/oidc/), and lands in chatsite with the provider's groups."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from tests import oidc_provider
from tests.oidc_provider import PEOPLE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
identity_provider = oidc_provider.identity_provider


def sign_in_at_provider(page, live_server, login: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_role("button", name="Sign in with Test IdP").click()
    # The provider's own sign-in page (its development form takes any password).
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password")
    page.get_by_role("button", name="Sign-in").click()


def group_names(username: str) -> set[str]:
    user = get_user_model().objects.get(username=username)
    return set(user.groups.values_list("name", flat=True))


def test_a_person_signs_in_at_the_provider_and_arrives_with_their_groups(open_page, live_server, identity_provider):
    page = open_page()
    sign_in_at_provider(page, live_server, "carol")

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator("#composer textarea[name=content]")).to_be_visible()
    carol = get_user_model().objects.get(username="carol")
    assert (carol.email, carol.is_active) == ("carol@example.com", True)
    assert group_names("carol") == {"chat-users", "engineering"}


def test_a_changed_group_at_the_provider_applies_at_the_next_sign_in(open_page, live_server, identity_provider):
    first = open_page()
    sign_in_at_provider(first, live_server, "carol")
    expect(first).to_have_url(f"{live_server.url}/")
    assert group_names("carol") == {"chat-users", "engineering"}

    identity_provider.set_people({**PEOPLE, "carol": {**PEOPLE["carol"], "groups": ["chat-users", "sales"]}})
    page = open_page()  # a new browser: signed in nowhere
    sign_in_at_provider(page, live_server, "carol")

    expect(page).to_have_url(f"{live_server.url}/")
    assert group_names("carol") == {"chat-users", "sales"}


def test_a_person_outside_the_required_group_is_refused(open_page, live_server, identity_provider, settings):
    settings.OIDC_REQUIRED_GROUP = "chat-users"
    page = open_page()
    sign_in_at_provider(page, live_server, "dave")

    expect(page.get_by_role("heading", name="You cannot sign in here")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("“chat-users”")
    assert not get_user_model().objects.filter(username="dave").exists()
    page.goto("/")
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/")
