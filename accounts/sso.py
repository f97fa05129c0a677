"""django-allauth's hooks for chatsite: who may come in through the provider, their groups, local sign-up."""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialLogin
from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django.shortcuts import render
from django.urls import reverse

from accounts import admission
from accounts.groups import claim_values, groups_mirror
from usage.models import UserQuota


def identity_providers() -> list[dict]:
    """The configured providers as the sign-in page shows them: their label and where the button posts."""
    return [
        {"name": app["name"], "login_url": reverse("openid_connect_login", kwargs={"provider_id": app["provider_id"]})}
        for app in settings.SOCIALACCOUNT_PROVIDERS["openid_connect"]["APPS"]
    ]


def claims_of(sociallogin: SocialLogin) -> dict:
    """The ID token's claims with the userinfo's over them (some providers send groups in only one)."""
    data = sociallogin.account.extra_data or {}
    return {**(data.get("id_token") or {}), **(data.get("userinfo") or {})}


def identity_of(sociallogin: SocialLogin) -> admission.Identity:
    claims = claims_of(sociallogin)
    email = (claims.get("email") or "").strip()
    verified = any(address.verified for address in sociallogin.email_addresses if address.email == email)
    return admission.Identity(
        email=email,
        email_verified=bool(email) and verified,
        groups=frozenset(claim_values(claims, settings.OIDC_GROUPS_CLAIM)),
    )


def _refuse(request: HttpRequest, reason: str) -> ImmediateHttpResponse:
    return ImmediateHttpResponse(render(request, "accounts/refused.html", {"reason": reason}, status=403))


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return settings.ALLOW_SIGNUP


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        # Accounts made on first sign-in are governed by the admission rules, not ALLOW_SIGNUP.
        return True

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        identity = identity_of(sociallogin)
        reason = admission.refusal(
            identity, allowed_domains=settings.OIDC_ALLOWED_DOMAINS, required_group=settings.OIDC_REQUIRED_GROUP
        )
        if reason:
            if sociallogin.is_existing and sociallogin.user.is_active:
                # The provider no longer lets them in: neither may we (an admin re-activates them).
                sociallogin.user.is_active = False
                sociallogin.user.save(update_fields=["is_active"])
            raise _refuse(request, reason)
        if not sociallogin.is_existing and identity.email and not identity.email_verified:
            taken = get_user_model().objects.filter(email__iexact=identity.email).exists()
            if taken:
                # Linking on an address the provider did not confirm would hand over someone's account.
                raise _refuse(
                    request,
                    "An account here already uses your email address, and the identity provider did not confirm "
                    "that the address is yours, so the two cannot be joined. Ask an administrator.",
                )
        if sociallogin.is_existing:
            groups_mirror(user=sociallogin.user, values=identity.groups)

    def authenticate_by_email(self, sociallogin: SocialLogin):
        """The one local account whose address (set by an administrator) the provider confirmed, if any.

        allauth would also match addresses people add themselves; chatsite lets nobody do that, and
        reads only the account's own address.
        """
        for address in sociallogin.email_addresses:
            if address.verified and address.email:
                users = list(get_user_model().objects.filter(email__iexact=address.email)[:2])
                if len(users) == 1:
                    return users[0], address.email
        return None

    def save_user(self, request: HttpRequest, sociallogin: SocialLogin, form=None):
        """A person admitted for the first time: their account, the site's default quota, their groups."""
        user = super().save_user(request, sociallogin, form)
        UserQuota.objects.get_or_create(user=user)
        groups_mirror(user=user, values=identity_of(sociallogin).groups)
        return user
