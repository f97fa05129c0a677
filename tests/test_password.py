"""People change their own password, staff or not."""

from pathlib import Path

import pytest

from tests.conftest import PASSWORD, CheckedClient

CHROMIUM = Path("/usr/bin/chromium")
if CHROMIUM.exists():
    from playwright.sync_api import expect

    from tests.browser.conftest import browser, open_page, page  # noqa: F401 (fixtures)
    from tests.browser.helpers import sign_in

NEW_PASSWORD = "a-new-and-longer-passphrase-42"
URL = "/accounts/password_change/"

pytestmark = pytest.mark.django_db


def _change(client, old: str, new: str = NEW_PASSWORD):
    return client.post(URL, {"old_password": old, "new_password1": new, "new_password2": new})


def _can_sign_in(password: str) -> bool:
    client = CheckedClient()
    response = client.post("/accounts/login/", {"username": "alice", "password": password})
    return response.status_code == 302 and "_auth_user_id" in client.session


def test_the_chat_links_to_the_password_page(client_alice):
    html = client_alice.get("/").content.decode()
    assert f'href="{URL}"' in html


def test_a_person_who_is_not_staff_changes_their_password_and_signs_in_with_it(alice, client_alice):
    assert not alice.is_staff
    page = client_alice.get(URL)
    assert page.status_code == 200
    assert 'name="old_password"' in page.content.decode()
    assert "style=" not in page.content.decode()  # the CSP forbids inline styles

    response = _change(client_alice, PASSWORD)

    assert response.status_code == 302 and response["Location"] == "/accounts/password_change/done/"
    assert "Your password is changed" in client_alice.get(response["Location"]).content.decode()
    assert client_alice.get("/").status_code == 200  # still signed in on this device
    assert _can_sign_in(NEW_PASSWORD)
    assert not _can_sign_in(PASSWORD)


def test_a_wrong_old_password_shows_an_error_and_changes_nothing(alice, client_alice):
    response = _change(client_alice, "not-the-password")

    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)
    assert not alice.check_password(NEW_PASSWORD)


def test_the_password_page_asks_a_visitor_to_sign_in(anon_client):
    response = anon_client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_changing_the_password_signs_out_the_other_devices(alice, client_alice):
    other_device = CheckedClient()
    other_device.force_login(alice)
    assert other_device.get("/").status_code == 200

    _change(client_alice, PASSWORD)

    assert other_device.get("/").status_code == 302
    assert client_alice.get("/").status_code == 200


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed (/usr/bin/chromium)")
def test_in_the_browser_the_sidebar_leads_to_a_password_change_that_works(page, live_server, alice):
    sign_in(page, live_server, alice)

    page.get_by_role("link", name="Password").click()
    page.fill("input[name=old_password]", PASSWORD)
    page.fill("input[name=new_password1]", NEW_PASSWORD)
    page.fill("input[name=new_password2]", NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()

    expect(page.get_by_role("status")).to_have_text(
        "Your password is changed. Use the new one the next time you sign in."
    )
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
