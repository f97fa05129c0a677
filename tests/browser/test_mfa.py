"""Two-factor sign-in in Chromium: set up an authenticator app from the sidebar, then sign in with
a code; allauth's pages stay within the Content-Security-Policy."""

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import sign_in
from tests.conftest import PASSWORD
from tests.test_mfa import totp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _a_code_of_the_last_period_counts(settings):
    settings.MFA_TOTP_TOLERANCE = 1


def test_a_person_sets_up_an_app_and_then_signs_in_with_its_code(open_page, live_server, alice):
    page = open_page()
    sign_in(page, live_server, alice)
    page.get_by_role("link", name="Two-factor sign-in").click()
    page.get_by_role("link", name="Activate").click()
    expect(page.get_by_role("img", name="QR code of the secret")).to_be_visible()
    secret = page.get_by_role("textbox", name="Secret").input_value()
    page.get_by_label("Code from the app").fill(totp(secret))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page).to_have_url(f"{live_server.url}/accounts/2fa/recovery-codes/")

    again = open_page()
    again.goto("/accounts/login/")
    again.fill("input[name=username]", "alice")
    again.fill("input[name=password]", PASSWORD)
    again.get_by_role("button", name="Sign in", exact=True).click()
    expect(again).to_have_url(f"{live_server.url}/accounts/2fa/authenticate/")
    again.get_by_role("textbox").fill(totp(secret))
    again.get_by_role("button", name="Sign In").click()
    expect(again).to_have_url(f"{live_server.url}/")
