"""Upstream API keys: encrypted at rest, and the one place that decides which key a request uses.

Stored keys (`ProviderKey`) are Fernet tokens under FIELD_ENCRYPTION_KEY (MultiFernet: the first
key encrypts, every key decrypts, so `rotate_keys` can move rows to a new key before the old one
is dropped). A plain key exists only in memory while a request is made; every plain key this
process has seen is remembered in `common.secrets`, which the log filter scrubs.
"""

from dataclasses import dataclass, replace

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from common import secrets
from providers.models import ProviderKey
from providers.upstream import UpstreamConfig


class EncryptionError(Exception):
    """A stored key cannot be encrypted or decrypted; the message says what an admin should do."""


def is_configured() -> bool:
    return bool(settings.FIELD_ENCRYPTION_KEY)


def _fernet() -> MultiFernet:
    if not settings.FIELD_ENCRYPTION_KEY:
        raise EncryptionError(
            "FIELD_ENCRYPTION_KEY is not set, so API keys cannot be stored. Put a Fernet key in the "
            "environment or in .env (`make run` writes one to a new .env), restart chatsite, and save again."
        )
    return MultiFernet([Fernet(key) for key in settings.FIELD_ENCRYPTION_KEY])


def encrypt(secret: str) -> str:
    secrets.remember(secret)
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    try:
        secret = _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise EncryptionError(
            "A stored API key cannot be decrypted with FIELD_ENCRYPTION_KEY. Was the key that encrypted it "
            "removed before `manage.py rotate_keys` ran? Put it back (after the new one), or enter the API key again."
        ) from None
    secrets.remember(secret)
    return secret


def set_secret(key: ProviderKey, secret: str) -> None:
    """Store `secret` on `key` (not saved): encrypted, with only its last 4 characters in clear."""
    key.secret_encrypted = encrypt(secret)
    key.last4 = secret[-4:]


def secret_of(key: ProviderKey) -> str:
    return decrypt(key.secret_encrypted)


def rotate_all() -> int:
    """Re-encrypt every stored key under the first FIELD_ENCRYPTION_KEY; returns how many."""
    fernet = _fernet()
    count = 0
    for key in ProviderKey.objects.only("pk", "secret_encrypted").iterator():
        try:
            token = fernet.rotate(key.secret_encrypted.encode()).decode()
        except InvalidToken:
            raise EncryptionError(
                f"The stored key “{key}” cannot be decrypted with any FIELD_ENCRYPTION_KEY; nothing after it was "
                "rotated. Put the old key back in FIELD_ENCRYPTION_KEY (after the new one) and run this again."
            ) from None
        ProviderKey.objects.filter(pk=key.pk).update(secret_encrypted=token)
        count += 1
    return count


@dataclass(frozen=True)
class ResolvedKey:
    """The key a request uses: a stored one (`provider_key` set) or the environment's."""

    base_url: str
    api_key: str = ""
    provider_key: ProviderKey | None = None

    def __repr__(self) -> str:  # never the key itself, even in a traceback's locals
        return f"ResolvedKey(base_url={self.base_url!r}, provider_key={self.label!r})"

    @property
    def label(self) -> str:
        return self.provider_key.label if self.provider_key else "environment (AIMLAPI_API_KEY)"

    def config(self) -> UpstreamConfig:
        name = f"the API key “{self.provider_key.label}” in the admin" if self.provider_key else "AIMLAPI_API_KEY"
        # The configured timeouts, retries and breaker, with this key's address and secret.
        label = self.provider_key.label if self.provider_key else ""
        return replace(
            UpstreamConfig.from_settings(), base_url=self.base_url, api_key=self.api_key, key_name=name, label=label
        )


def resolve_key(user) -> ResolvedKey:
    """The key for `user`'s requests: theirs, then their group's, then the site default, then the environment.

    Disabled keys are never used. Among several keys at one level, the oldest (lowest id) wins.
    """
    key = stored_key_for(user)
    if key is not None:
        return for_key(key)
    return ResolvedKey(base_url=settings.AIMLAPI_BASE_URL, api_key=settings.AIMLAPI_API_KEY or "")


def stored_key_for(user) -> ProviderKey | None:
    """The stored key `resolve_key` picks for `user`, without decrypting it; None: the environment's."""
    enabled = ProviderKey.objects.filter(enabled=True).order_by("pk")
    for queryset in (
        enabled.filter(users=user),
        enabled.filter(groups__in=user.groups.all()),
        enabled.filter(is_default=True),
    ):
        key = queryset.first()
        if key is not None:
            return key
    return None


def for_key(key: ProviderKey) -> ResolvedKey:
    """A stored key as a request would use it (for the admin's "Test key")."""
    return ResolvedKey(base_url=key.base_url, api_key=secret_of(key), provider_key=key)
