"""The administrator's sign-in settings (password sign-in off for all but superusers) and password
reset by email."""

import re

import pytest

from accounts.models import SignInSettings
from tests.conftest import PASSWORD, CheckedClient

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "a-new-and-longer-passphrase-42"


def _sign_in(username: str, password: str = PASSWORD):
    client = CheckedClient()
    response = client.post("/accounts/login/", {"username": username, "password": password})
    return response, client


def test_with_password_sign_in_off_only_superusers_sign_in_with_a_password(alice, admin_user):
    SignInSettings(password_sign_in=False).save()

    refused, client = _sign_in("alice")
    assert refused.status_code == 200
    assert "Password sign-in is turned off" in refused.content.decode()
    assert "_auth_user_id" not in client.session

    admitted, client = _sign_in("root")
    assert admitted.status_code == 302
    assert client.session["_auth_user_id"] == str(admin_user.pk)


def test_the_sign_in_page_says_password_sign_in_is_for_administrators(anon_client):
    assert "for administrators only" not in anon_client.get("/accounts/login/").content.decode()
    SignInSettings(password_sign_in=False).save()
    assert "for administrators only" in anon_client.get("/accounts/login/").content.decode()


def test_the_admin_turns_password_sign_in_off(client_admin, alice):
    assert client_admin.get("/admin/accounts/signinsettings/")["Location"] == "/admin/accounts/signinsettings/add/"

    response = client_admin.post("/admin/accounts/signinsettings/add/", {})  # both boxes unticked

    assert response.status_code == 302
    stored = SignInSettings.current()
    assert (stored.password_sign_in, stored.mfa_required_for_staff) == (False, False)
    assert client_admin.get("/admin/accounts/signinsettings/")["Location"] == "/admin/accounts/signinsettings/1/change/"
    assert client_admin.get("/admin/accounts/signinsettings/add/").status_code == 403  # one row only


def test_password_reset_is_closed_without_a_mail_server(anon_client, settings):
    settings.PASSWORD_RESET_BY_EMAIL = False

    assert anon_client.get("/accounts/password/reset/").status_code == 404
    assert "Forgot your password" not in anon_client.get("/accounts/login/").content.decode()


def test_a_person_resets_their_password_by_email(anon_client, alice, settings, mailoutbox):
    settings.PASSWORD_RESET_BY_EMAIL = True
    alice.email = "alice@example.com"
    alice.save()
    assert 'href="/accounts/password/reset/"' in anon_client.get("/accounts/login/").content.decode()

    response = anon_client.post("/accounts/password/reset/", {"email": "alice@example.com"})

    assert response.status_code == 302
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["alice@example.com"]
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+/)", mailoutbox[0].body).group(1)
    form_page = anon_client.get(link, follow=True)
    assert form_page.status_code == 200
    done = anon_client.post(
        form_page.redirect_chain[-1][0] if form_page.redirect_chain else link,
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert done.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    assert _sign_in("alice", NEW_PASSWORD)[0].status_code == 302


def test_a_reset_for_an_unknown_address_sends_no_link_and_answers_the_same(anon_client, alice, settings, mailoutbox):
    settings.PASSWORD_RESET_BY_EMAIL = True

    response = anon_client.post("/accounts/password/reset/", {"email": "nobody@example.com"})

    assert response.status_code == 302  # as for a known address: the page does not tell who has an account
    # allauth tells the address's owner that no account uses it, without a link.
    assert [(mail.to, "Unknown Account" in mail.subject) for mail in mailoutbox] == [(["nobody@example.com"], True)]
    assert "/password/reset/key/" not in mailoutbox[0].body
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)
