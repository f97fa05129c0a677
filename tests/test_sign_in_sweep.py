"""Every sign-in address (ours and django-allauth's under /accounts/) given hostile input by a
visitor and by a signed-in person: a readable answer, never a server error, and nobody's account,
password, groups or two-factor set-up changed."""

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver

from tests.xss_corpus import PAYLOADS

pytestmark = pytest.mark.django_db
HOSTILE = {
    "username": PAYLOADS[0],
    "password": "x' OR '1'='1",
    "login": "../../etc/passwd",
    "email": f"{PAYLOADS[1]}@example.com",
    "code": "000000",
    "password1": "a",
    "password2": "b",
    "next": "https://evil.example/",
    "process": "connect",
}
# Taken on purpose: signing out ends the session that the checks below read.
SKIP = {"logout", "account_logout"}


def _sign_in_addresses() -> list[str]:
    found = []

    def walk(patterns, prefix):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace != "admin":
                    walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern) and pattern.name and pattern.name not in SKIP:
                route = prefix + str(pattern.pattern)
                if route.startswith("accounts/") and "<" not in route and "(?P" not in route:
                    found.append("/" + route.replace("^", "").replace("$", ""))

    walk(get_resolver().url_patterns, "")
    return sorted(set(found))


def _snapshot():
    users = get_user_model().objects.order_by("pk")
    return [
        list(users.values("pk", "username", "password", "email", "is_active", "is_staff", "is_superuser")),
        list(get_user_model().groups.through.objects.order_by("pk").values()),
        list(Authenticator.objects.order_by("pk").values("pk", "user", "type", "data")),
        list(SocialAccount.objects.order_by("pk").values()),
    ]


def test_the_sweep_sees_allauths_addresses():
    addresses = _sign_in_addresses()
    for expected in ("/accounts/2fa/authenticate/", "/accounts/password/reset/", "/accounts/reauthenticate/"):
        assert expected in addresses


@pytest.mark.parametrize("who", ["visitor", "alice"])
def test_hostile_input_to_every_sign_in_address_changes_nothing(who, client_alice, anon_client, bob, settings):
    settings.PASSWORD_RESET_BY_EMAIL = True
    TOTP.activate(bob, generate_totp_secret())  # another person's two-factor set-up, which must stay
    RecoveryCodes.activate(bob)
    client = client_alice if who == "alice" else anon_client
    before = _snapshot()
    assert len(before[2]) == 2

    for address in _sign_in_addresses():
        for response in (
            client.get(address, HOSTILE),
            client.post(address, HOSTILE),
            client.post(address, HOSTILE, htmx=True),
        ):
            assert response.status_code < 500, (address, response.status_code)
            if response.status_code in (301, 302):
                assert not response["Location"].startswith("https://evil.example"), address

    assert _snapshot() == before
