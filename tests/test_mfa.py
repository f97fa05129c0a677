"""Two-factor sign-in for local accounts (allauth.mfa): setting up an authenticator app, signing in
with its code (computed here from the secret, RFC 6238), wrong and reused codes, recovery codes, and
the sign-in settings' "required for staff"."""

import base64
import hashlib
import hmac
import re
import struct
import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes

from accounts.models import SignInSettings
from tests.conftest import PASSWORD, CheckedClient

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _a_code_of_the_last_period_counts(settings):
    # A code computed just before a 30-second boundary is checked just after it.
    settings.MFA_TOTP_TOLERANCE = 1


def totp(secret: str, at: float | None = None) -> str:
    """The six-digit code an authenticator app shows for this base32 secret (RFC 6238, SHA-1, 30 s)."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    counter = int(time.time() if at is None else at) // 30
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def password_sign_in(username: str):
    client = CheckedClient()
    response = client.post("/accounts/login/", {"username": username, "password": PASSWORD})
    return client, response


def set_up_app(client) -> str:
    """Turn on two-factor sign-in in the page; the secret it showed."""
    page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200
    secret = re.search(r'value="([A-Z2-7]+)" readonly data-totp-secret', page.content.decode()).group(1)
    response = client.post("/accounts/2fa/totp/activate/", {"code": totp(secret)})
    assert response.status_code == 302
    return secret


def test_a_person_sets_up_an_authenticator_app(alice):
    client, _ = password_sign_in("alice")
    page = client.get("/accounts/2fa/totp/activate/").content.decode()
    assert "<svg" in page and "data:image" not in page  # the QR code inline: the CSP allows no data: images

    set_up_app(client)

    assert Authenticator.objects.filter(user=alice, type=Authenticator.Type.TOTP).exists()
    assert Authenticator.objects.filter(user=alice, type=Authenticator.Type.RECOVERY_CODES).exists()


def test_a_wrong_code_does_not_turn_it_on(alice):
    client, _ = password_sign_in("alice")
    client.get("/accounts/2fa/totp/activate/")

    response = client.post("/accounts/2fa/totp/activate/", {"code": "000000"})

    assert response.status_code == 200
    assert "Incorrect code" in response.content.decode()
    assert not Authenticator.objects.filter(user=alice).exists()


def test_sign_in_asks_for_the_code_and_refuses_a_wrong_one(alice):
    secret = set_up_app(password_sign_in("alice")[0])

    client, response = password_sign_in("alice")
    assert response.status_code == 302 and response["Location"] == "/accounts/2fa/authenticate/"
    assert not signed_in(client)  # the right password alone is not enough

    wrong = client.post("/accounts/2fa/authenticate/", {"code": "123456" if totp(secret) != "123456" else "654321"})
    assert wrong.status_code == 200
    assert "Incorrect code" in wrong.content.decode()
    assert not signed_in(client)

    right = client.post("/accounts/2fa/authenticate/", {"code": totp(secret)})
    assert right.status_code == 302 and right["Location"] == "/"
    assert signed_in(client)
    assert client.get("/").status_code == 200


def test_a_code_is_good_for_one_sign_in(alice):
    secret = set_up_app(password_sign_in("alice")[0])
    code = totp(secret)
    first, _ = password_sign_in("alice")
    first.post("/accounts/2fa/authenticate/", {"code": code})
    assert signed_in(first)

    second, _ = password_sign_in("alice")
    second.post("/accounts/2fa/authenticate/", {"code": code})

    assert not signed_in(second)


def test_a_recovery_code_signs_in_once(alice):
    set_up_app(password_sign_in("alice")[0])
    codes = RecoveryCodes(Authenticator.objects.get(user=alice, type=Authenticator.Type.RECOVERY_CODES))
    code = codes.get_unused_codes()[0]

    client, _ = password_sign_in("alice")
    client.post("/accounts/2fa/authenticate/", {"code": code})
    assert signed_in(client)

    again, _ = password_sign_in("alice")
    response = again.post("/accounts/2fa/authenticate/", {"code": code})
    assert response.status_code == 200
    assert not signed_in(again)


def test_staff_must_set_up_an_app_when_the_settings_require_it(alice, admin_user):
    SignInSettings(mfa_required_for_staff=True).save()

    staff, _ = password_sign_in("root")
    for page in ("/", "/admin/", "/c/list/"):
        response = staff.get(page)
        assert response.status_code == 302 and response["Location"] == "/accounts/2fa/totp/activate/?required=1"
    assert "must sign in with a code" in staff.get("/accounts/2fa/totp/activate/?required=1").content.decode()
    assert staff.get("/", htmx=True)["HX-Redirect"] == "/accounts/2fa/totp/activate/?required=1"

    person, _ = password_sign_in("alice")  # not staff: not asked
    assert person.get("/").status_code == 200

    set_up_app(staff)
    assert staff.get("/admin/").status_code == 200


def test_staff_are_not_asked_when_the_settings_do_not_require_it(admin_user):
    staff, _ = password_sign_in("root")

    assert staff.get("/admin/").status_code == 200
