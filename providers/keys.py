"""Upstream API keys: encrypted at rest, and the one place that decides which key a request uses.

Stored keys (`ProviderKey`) are Fernet tokens under FIELD_ENCRYPTION_KEY (MultiFernet: the first
key encrypts, every key decrypts, so `rotate_keys` can move rows to a new key before the old one
is dropped). A plain key exists only in memory while a request is made; every plain key this
process has seen is remembered in `common.secrets`, which the log filter scrubs.
"""

from dataclasses import dataclass, replace

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from common import secrets
from providers.models import ProviderKey
from providers.upstream import UpstreamConfig

KEYS_CACHE_KEY = "chatsite:provider-key-assignments:v1"
KEYS_SECONDS = 30


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


def stored_key_for(user, *, again: bool = True) -> ProviderKey | None:
    """The stored key `resolve_key` picks for `user`, without decrypting it; None: the environment's."""
    assigned = assignments()
    if not assigned:  # no enabled stored key at all: no query
        return None
    pk = next((key.pk for key in assigned if user.pk in key.user_ids), None)
    if pk is None and any(key.group_ids for key in assigned):
        # The person's groups are read, never cached: a change of membership needs no invalidation.
        group_ids = set(user.groups.values_list("pk", flat=True))
        pk = next((key.pk for key in assigned if key.group_ids & group_ids), None)
    if pk is None:
        pk = next((key.pk for key in assigned if key.is_default), None)
    if pk is None:
        return None
    # The row itself is read each time, not cached: its secret is rotated with update() (rotate_all).
    key = ProviderKey.objects.filter(pk=pk, enabled=True).first()
    if key is None and again:  # disabled or deleted on another process since the cache was filled
        forget_assignments()
        return stored_key_for(user, again=False)
    return key


@dataclass(frozen=True)
class Assignment:
    """One enabled stored key and who it is for, as `stored_key_for` reads them from the cache."""

    pk: int
    is_default: bool
    user_ids: frozenset[int]
    group_ids: frozenset[int]


def assignments() -> tuple[Assignment, ...]:
    """Every enabled stored key with its people and groups, lowest id first, kept in the cache.

    Every reply and title asks which key to use, and the answer changes only when an admin edits
    a key (its save, delete, people or groups clear the cache, see providers.apps; other processes
    without a shared cache see the change within KEYS_SECONDS). Without any stored key, the
    common case, the lookup then costs no query at all."""
    assigned = cache.get(KEYS_CACHE_KEY)
    if assigned is None:
        enabled = list(ProviderKey.objects.filter(enabled=True).order_by("pk").values_list("pk", "is_default"))
        users: dict[int, set[int]] = {}
        groups: dict[int, set[int]] = {}
        if enabled:
            pks = [pk for pk, _ in enabled]
            through = ProviderKey.users.through.objects.filter(providerkey_id__in=pks)
            for pk, user_id in through.values_list("providerkey_id", "user_id"):
                users.setdefault(pk, set()).add(user_id)
            through = ProviderKey.groups.through.objects.filter(providerkey_id__in=pks)
            for pk, group_id in through.values_list("providerkey_id", "group_id"):
                groups.setdefault(pk, set()).add(group_id)
        assigned = tuple(
            Assignment(pk, is_default, frozenset(users.get(pk, ())), frozenset(groups.get(pk, ())))
            for pk, is_default in enabled
        )
        cache.set(KEYS_CACHE_KEY, assigned, KEYS_SECONDS)
    return assigned


def forget_assignments() -> None:
    """Clear the cached assignments now and again when the transaction that changed them commits
    (a reply reading in between would otherwise cache the old ones)."""
    cache.delete(KEYS_CACHE_KEY)
    transaction.on_commit(lambda: cache.delete(KEYS_CACHE_KEY))


def for_key(key: ProviderKey) -> ResolvedKey:
    """A stored key as a request would use it (for the admin's "Test key")."""
    return ResolvedKey(base_url=key.base_url, api_key=secret_of(key), provider_key=key)
