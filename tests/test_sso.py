"""Team sign-in without a browser: the provider settings, who is let in, the groups mirrored from
the provider's claim, and when a local account is linked (allauth's login flow, claims given)."""

import pytest
from allauth.core import context
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.internal.flows.login import complete_login
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, Group
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.exceptions import ImproperlyConfigured

from accounts.admission import Identity, refusal
from accounts.groups import claim_values, groups_mirror
from accounts.models import GroupMapping
from chatsite.env import env_oidc_providers
from common import secrets
from usage.models import UserQuota

pytestmark = pytest.mark.django_db
User = get_user_model()
APP = {
    "provider_id": "corp",
    "name": "Corp",
    "client_id": "chatsite",
    "secret": "test-only-secret",
    "settings": {"server_url": "https://idp.example.com", "oauth_pkce_enabled": True},
}


def claims(sub: str = "u-1", **extra) -> dict:
    return {
        "sub": sub,
        "email": "erin@corp.example",
        "email_verified": True,
        "preferred_username": "erin",
        "groups": ["chat-users"],
        **extra,
    }


@pytest.fixture
def provider_settings(settings):
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": [APP]}}
    settings.OIDC_ALLOWED_DOMAINS = []
    settings.OIDC_REQUIRED_GROUP = ""
    settings.OIDC_GROUPS_CLAIM = "groups"
    return settings


def sign_in(rf, userinfo: dict):
    """One sign-in through the provider with these userinfo claims, after the code exchange."""
    request = rf.get("/accounts/oidc/corp/login/callback/")
    SessionMiddleware(lambda r: None).process_request(request)
    request.user = AnonymousUser()
    request._messages = FallbackStorage(request)
    with context.request_context(request):
        provider = get_adapter().get_provider(request, "corp")
        sociallogin = provider.sociallogin_from_response(request, {"userinfo": userinfo})
        return complete_login(request, sociallogin), request


# --- Settings ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _secrets_seen_here_stay_here(monkeypatch):
    # env_oidc_providers remembers each client secret for scrubbing, process-wide; the secrets of
    # these tests must not be looked for in every later test's responses.
    monkeypatch.setattr(secrets, "_known", set())


def test_it_reads_providers_from_numbered_variables(monkeypatch):
    monkeypatch.setenv("OIDC_ISSUER", "https://login.example.com/realms/team/")
    monkeypatch.setenv("OIDC_CLIENT_ID", "chatsite")
    monkeypatch.setenv("OIDC_CLIENT_SECRET", "first-client-secret-9f2c")
    monkeypatch.setenv("OIDC_NAME", "Keycloak")
    monkeypatch.setenv("OIDC_2_ISSUER", "https://login.microsoftonline.com/tenant/v2.0")
    monkeypatch.setenv("OIDC_2_CLIENT_ID", "abc")
    monkeypatch.setenv("OIDC_2_CLIENT_SECRET", "second-client-secret-4b7e")
    monkeypatch.setenv("OIDC_2_SCOPES", "openid email profile groups")

    first, second = env_oidc_providers()

    assert (first["provider_id"], first["name"], first["settings"]["server_url"]) == (
        "sso",
        "Keycloak",
        "https://login.example.com/realms/team",
    )
    assert first["settings"]["oauth_pkce_enabled"] is True
    assert (second["provider_id"], second["settings"]["scope"]) == ("sso2", ["openid", "email", "profile", "groups"])
    assert {"first-client-secret-9f2c", "second-client-secret-4b7e"} <= secrets.known()  # scrubbed from logs


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"OIDC_ISSUER": "https://idp.example.com", "OIDC_CLIENT_ID": "x"}, "OIDC_CLIENT_SECRET must be set"),
        ({"OIDC_CLIENT_ID": "x"}, "OIDC_ISSUER must be set"),
        ({"OIDC_ISSUER": "http://idp.example.com", "OIDC_CLIENT_ID": "x", "OIDC_CLIENT_SECRET": "y"}, "https://"),
        ({"OIDC_ISSUER": "https://a", "OIDC_CLIENT_ID": "x", "OIDC_CLIENT_SECRET": "y", "OIDC_ID": "a/b"}, "OIDC_ID"),
    ],
)
def test_it_stops_the_start_on_an_unusable_provider(monkeypatch, variables, message):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ImproperlyConfigured, match=message):
        env_oidc_providers()


def test_the_sign_in_page_has_a_button_per_provider(client, provider_settings):
    response = client.get("/accounts/login/")

    assert b"Sign in with Corp" in response.content
    assert b'action="/accounts/oidc/corp/login/"' in response.content


# --- Admission -----------------------------------------------------------------------------


def test_admission_rules():
    person = Identity(email="erin@Corp.example", email_verified=True, groups=frozenset({"chat-users"}))

    assert refusal(person, allowed_domains=[], required_group="") is None
    assert refusal(person, allowed_domains=["corp.example"], required_group="chat-users") is None
    assert "not in the group “admins”" in refusal(person, allowed_domains=[], required_group="admins")
    assert "Accounts of corp.example" in refusal(person, allowed_domains=["other.example"], required_group="")
    unverified = Identity(email="erin@corp.example", email_verified=False, groups=frozenset())
    assert "did not confirm your email" in refusal(unverified, allowed_domains=["corp.example"], required_group="")


def test_a_new_person_of_an_allowed_domain_gets_an_account_with_a_quota_and_groups(rf, provider_settings):
    provider_settings.OIDC_ALLOWED_DOMAINS = ["corp.example"]

    response, request = sign_in(rf, claims())

    assert response.status_code == 302
    erin = User.objects.get(username="erin")
    assert request.session["_auth_user_id"] == str(erin.pk)
    assert (erin.email, erin.has_usable_password()) == ("erin@corp.example", False)
    assert UserQuota.objects.filter(user=erin).exists()
    assert set(erin.groups.values_list("name", flat=True)) == {"chat-users"}


def test_a_person_of_another_domain_is_refused_and_no_account_is_made(rf, provider_settings):
    provider_settings.OIDC_ALLOWED_DOMAINS = ["other.example"]

    response, request = sign_in(rf, claims())

    assert response.status_code == 403
    assert "Accounts of corp.example may not sign in" in response.content.decode()
    assert not User.objects.filter(username="erin").exists()
    assert "_auth_user_id" not in request.session


def test_a_person_who_left_the_required_group_is_refused_and_deactivated(rf, provider_settings):
    provider_settings.OIDC_REQUIRED_GROUP = "chat-users"
    sign_in(rf, claims())
    assert User.objects.get(username="erin").is_active

    response, request = sign_in(rf, claims(groups=["alumni"]))

    assert response.status_code == 403
    assert "“chat-users”" in response.content.decode()
    assert not User.objects.get(username="erin").is_active
    assert "_auth_user_id" not in request.session
    # Back in the group, they stay out until an administrator re-activates them.
    response, request = sign_in(rf, claims())
    assert "_auth_user_id" not in request.session


# --- Linking local accounts ----------------------------------------------------------------


def test_a_verified_address_links_the_local_account(rf, provider_settings, alice):
    alice.email = "erin@corp.example"
    alice.save()

    response, request = sign_in(rf, claims())

    assert response.status_code == 302
    assert request.session["_auth_user_id"] == str(alice.pk)
    assert SocialAccount.objects.get(provider="corp", uid="u-1").user == alice
    assert not User.objects.filter(username="erin").exists()


def test_an_unverified_address_does_not_link_the_local_account(rf, provider_settings, alice):
    alice.email = "erin@corp.example"
    alice.save()

    response, request = sign_in(rf, claims(email_verified=False))

    assert response.status_code == 403
    assert "did not confirm that the address is yours" in response.content.decode()
    assert "_auth_user_id" not in request.session
    assert not SocialAccount.objects.exists()
    alice.refresh_from_db()
    assert alice.has_usable_password()


def test_a_taken_username_does_not_take_over_the_local_account(rf, provider_settings, alice):
    response, request = sign_in(rf, claims(preferred_username="alice", email="alice@corp.example"))

    assert response.status_code == 302
    newcomer = User.objects.get(pk=int(request.session["_auth_user_id"]))
    assert newcomer != alice
    assert newcomer.username != "alice"


# --- Groups --------------------------------------------------------------------------------


def test_claim_values_read_a_list_a_single_name_or_nothing():
    assert claim_values({"groups": ["a", " b ", "", 3, {"x": 1}]}, "groups") == {"a", "b", "3"}
    assert claim_values({"roles": "admin"}, "roles") == {"admin"}
    assert claim_values({}, "groups") == set()
    assert claim_values({"groups": {"a": 1}}, "groups") == set()


def test_groups_follow_the_claim_and_groups_made_by_hand_stay(alice):
    by_hand = Group.objects.create(name="beta testers")
    alice.groups.add(by_hand)

    groups_mirror(user=alice, values={"engineering", "chat-users"})
    assert set(alice.groups.values_list("name", flat=True)) == {"beta testers", "engineering", "chat-users"}

    groups_mirror(user=alice, values={"chat-users"})
    assert set(alice.groups.values_list("name", flat=True)) == {"beta testers", "chat-users"}


def test_an_admin_mapping_puts_a_claim_value_into_the_named_group(alice, bob):
    staff = Group.objects.create(name="Engineers")
    GroupMapping.objects.create(claim_value="8d1e-eng-object-id", group=staff)

    groups_mirror(user=alice, values={"8d1e-eng-object-id"})
    groups_mirror(user=bob, values=set())

    assert list(alice.groups.values_list("name", flat=True)) == ["Engineers"]
    assert not bob.groups.exists()
    assert not Group.objects.filter(name="8d1e-eng-object-id").exists()


def test_groups_are_mirrored_at_every_sign_in(rf, provider_settings):
    provider_settings.OIDC_GROUPS_CLAIM = "roles"
    sign_in(rf, claims(roles=["a", "b"]))
    sign_in(rf, claims(roles=["b", "c"]))

    assert set(User.objects.get(username="erin").groups.values_list("name", flat=True)) == {"b", "c"}
