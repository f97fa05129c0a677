"""Writes and the one read of personal access tokens: create, revoke, and authenticate a request."""

import hashlib
import secrets
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from api.errors import ApiError
from api.models import TOKEN_PREFIX, AccessToken

# A prefix of this length tells tokens apart in a list; it gives away 6 of 43 random characters.
_SHOWN = len(TOKEN_PREFIX) + 6
# last_used_at is written at most this often per token: a busy script does not write every call.
_LAST_USED_EVERY_SECONDS = 60


def hash_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_create(
    *, owner, name: str, expires_at: datetime | None = None, store_history: bool = False
) -> tuple[AccessToken, str]:
    """A new token for `owner`; returns it and the token itself, which is never stored or shown again."""
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = AccessToken.objects.create(
        owner=owner,
        name=name.strip() or "token",
        prefix=plain[:_SHOWN],
        token_hash=hash_of(plain),
        expires_at=expires_at,
        store_history=store_history,
    )
    return token, plain


def token_revoke(*, token: AccessToken) -> None:
    """Refuse the token from now on; the row stays, so the list shows when it was revoked."""
    AccessToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def authenticate(request) -> AccessToken:
    """The token of a /v1/ request, from `Authorization: Bearer` only; raise ApiError 401 or 403.

    A token anywhere else (a query string, another header) is refused rather than ignored, so a
    tool that leaks it in a URL learns at once. The lookup is one indexed query on the hash of
    whatever was given, so a wrong token costs the same time whatever it shares with a right one.
    """
    if any(value.startswith(TOKEN_PREFIX) for value in request.GET.values()):
        raise ApiError(401, "Send the token in the Authorization header, never in the address.", code="token_in_url")
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise ApiError(401, "Send your chatsite token as `Authorization: Bearer cs-…`.", code="missing_token")
    token = AccessToken.objects.select_related("owner").filter(token_hash=hash_of(given.strip())).first()
    if token is None or not token.is_usable or not token.owner.is_active:
        # One message for every case: a caller learns nothing about which tokens exist.
        raise ApiError(401, "This token is not valid: it may be wrong, expired or revoked.", code="invalid_api_key")
    _check_allowed(token.owner)
    _touch(token)
    return token


def _check_allowed(user) -> None:
    if not settings.API_ENABLED:
        raise ApiError(403, "The API is turned off on this site.", code="api_disabled")
    groups = settings.API_GROUPS
    if groups and not user.groups.filter(name__in=groups).exists():
        raise ApiError(403, "Your account may not use the API on this site; ask an admin.", code="api_not_allowed")


def _touch(token: AccessToken) -> None:
    now = timezone.now()
    last = token.last_used_at
    if last is None or (now - last).total_seconds() >= _LAST_USED_EVERY_SECONDS:
        AccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
