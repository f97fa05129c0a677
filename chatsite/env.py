"""Typed readers for settings that come from the environment.

Each helper returns the default when the variable is unset or empty, and raises
ImproperlyConfigured with the variable's name when a value is present but unusable,
so a typo stops the process at start-up instead of surfacing later as odd behaviour.
"""

import base64
import binascii
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

from common import secrets

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def load_env_file(default: Path) -> None:
    """Read settings from the file CHATSITE_ENV_FILE names, or `default`; real variables win.

    CHATSITE_ENV_FILE=none reads no file at all: the test suite sets it (pyproject.toml), so a
    developer's .env never changes the settings the tests run with.
    """
    name = os.environ.get("CHATSITE_ENV_FILE", "").strip()
    if name.lower() != "none":
        load_dotenv(name or default, override=False)


def _raw(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def env_str(name: str, default: str | None = None) -> str | None:
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool = False) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0, true/false, yes/no, on/off; got {value!r}.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number; got {value!r}.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}; got {number}.")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number; got {value!r}.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}; got {number}.")
    return number


def env_decimal(name: str, default: str, *, minimum: str | None = None) -> Decimal:
    """An exact amount (money), e.g. "12.50"."""
    value = _raw(name) or default
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ImproperlyConfigured(f"{name} must be an amount such as 12.50; got {value!r}.") from None
    if not number.is_finite() or (minimum is not None and number < Decimal(minimum)):
        raise ImproperlyConfigured(f"{name} must be a finite amount of at least {minimum}; got {value!r}.")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_fernet_keys(name: str) -> list[str]:
    """Comma-separated Fernet keys (32 url-safe base64-encoded bytes each), first one first."""
    keys = env_list(name, [])
    for position, key in enumerate(keys, start=1):
        try:
            valid = len(base64.urlsafe_b64decode(key.encode())) == 32
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            raise ImproperlyConfigured(
                f"{name}: key {position} is not a Fernet key (44 characters of url-safe base64). Make one with: "
                'python3 -c "import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())"'
            )
    return keys


def _oidc_issuer(name: str) -> str:
    issuer = env_str(name) or ""
    parts = urlsplit(issuer)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ImproperlyConfigured(f"{name} must be an https:// URL (http:// only on this machine); got {issuer!r}.")
    return issuer.rstrip("/")


def oidc_origins(providers: list[dict]) -> list[str]:
    """scheme://host[:port] of each provider's issuer, as the Content-Security-Policy names origins."""
    return sorted({"{0.scheme}://{0.netloc}".format(urlsplit(app["settings"]["server_url"])) for app in providers})


def env_oidc_providers(max_providers: int = 9) -> list[dict]:
    """The identity providers of OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET (and OIDC_NAME,
    OIDC_ID, OIDC_SCOPES), then OIDC_2_ISSUER… up to OIDC_9_…, as django-allauth's openid_connect APPS.

    A provider is given by its issuer; a missing client id or secret beside an issuer, or a client
    id without an issuer, stops the start with the variable's name.
    """
    providers = []
    for number in range(1, max_providers + 1):
        prefix = "OIDC_" if number == 1 else f"OIDC_{number}_"
        given = [field for field in ("ISSUER", "CLIENT_ID", "CLIENT_SECRET") if _raw(prefix + field)]
        if not given:
            continue
        for field in ("ISSUER", "CLIENT_ID", "CLIENT_SECRET"):
            if field not in given:
                raise ImproperlyConfigured(f"{prefix}{field} must be set beside {prefix}{given[0]}.")
        provider_id = env_str(prefix + "ID", "sso" if number == 1 else f"sso{number}")
        if not provider_id.isascii() or not provider_id.replace("-", "").isalnum():
            raise ImproperlyConfigured(f"{prefix}ID must be letters, digits and dashes; got {provider_id!r}.")
        settings = {"server_url": _oidc_issuer(prefix + "ISSUER"), "oauth_pkce_enabled": True}
        if scopes := env_str(prefix + "SCOPES"):
            settings["scope"] = scopes.split()
        providers.append(
            {
                "provider_id": provider_id,
                "name": env_str(prefix + "NAME", "single sign-on"),
                "client_id": env_str(prefix + "CLIENT_ID"),
                "secret": env_str(prefix + "CLIENT_SECRET"),
                # Discovery from the issuer's /.well-known/openid-configuration; code flow with PKCE.
                "settings": settings,
            }
        )
    for provider in providers:
        secrets.remember(provider["secret"])  # scrubbed from every log record
    if len({provider["provider_id"] for provider in providers}) < len(providers):
        raise ImproperlyConfigured("Two identity providers have the same OIDC_…ID; give each its own.")
    return providers
