"""chatsite settings. Every value that differs between machines comes from the environment.

A `.env` file in the project root (or the file CHATSITE_ENV_FILE names) is read first;
real environment variables win over it.
Every variable is listed, with its default, in `.env.example` and the README.
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from chatsite.database import database_settings
from chatsite.env import (
    env_bool,
    env_decimal,
    env_fernet_keys,
    env_float,
    env_int,
    env_list,
    env_oidc_providers,
    env_str,
    load_env_file,
    oidc_origins,
)
from common.log import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
load_env_file(BASE_DIR / ".env")

DEBUG = env_bool("DEBUG", False)

# No production default. Without a key (and DEBUG off) the settings still load, so
# `manage.py check`, `makemigrations` and `migrate` work in a bare checkout; serving refuses to
# start (chatsite/wsgi.py), and anything that signs fails with Django's "must not be empty".
SECRET_KEY = env_str("SECRET_KEY") or ""
if not SECRET_KEY and DEBUG:
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"  # noqa: S105 (DEBUG only)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "csp",
    "django_htmx",
    "template_partials",
    # Team sign-in (django-allauth: local accounts, OpenID Connect, two-factor sign-in).
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.mfa",
    # The apps, lowest layer first (docs/architecture.md): each imports only those above it.
    "providers",
    "usage",
    "conversations",
    "accounts",
    "api",
    "prompts",
    "retention",
    "feedback",
]

MIDDLEWARE = [
    "common.fairness.FairQueueMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "common.errors.ReadableErrorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "common.security.RejectMalformedInputMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "accounts.middleware.LoginRequiredMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.mfa.StaffMFAMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chatsite.urls"
WSGI_APPLICATION = "chatsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# SQLite in var/ is the embedded default; DATABASE_URL=postgres://... selects PostgreSQL.
# chatsite/database.py says how each is tuned (SQLite's WAL and write lock, PostgreSQL's pool).
# DATABASE_POOL_MAX: PostgreSQL connections per process, from a pool (0: no pool, e.g. behind PgBouncer).
DATABASE_POOL_MAX = env_int("DATABASE_POOL_MAX", 20, minimum=0)
DATABASES = {
    "default": database_settings(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        pool_max=DATABASE_POOL_MAX,
    )
}

# --- Cache ----------------------------------------------------------------------------
# Rate limits and quotas count in the cache. Each process has its own local-memory cache by
# default; REDIS_URL=redis://... shares one Redis between every process and host.
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    # Sessions are read from Redis by every process and host, and written through to the
    # database too (cached_db): a Redis restart or eviction does not sign anyone out, and a
    # session read costs one Redis round trip instead of a database query.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # Without Redis, sessions stay in the database, which every process shares.
    SESSION_ENGINE = "django.contrib.sessions.backends.db"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts -------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Failed sign-ins are counted in the cache per username and per address (accounts/throttles.py);
# past either limit, sign-in is refused for LOGIN_LOCKOUT_SECONDS after the last failure.
LOGIN_FAILURES_PER_ACCOUNT = env_int("LOGIN_FAILURES_PER_ACCOUNT", 5, minimum=1)
LOGIN_FAILURES_PER_IP = env_int("LOGIN_FAILURES_PER_IP", 20, minimum=1)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 900, minimum=1)
# New accounts (when ALLOW_SIGNUP is on) from one address per hour; 0: no limit.
SIGNUPS_PER_IP = env_int("SIGNUPS_PER_IP", 5, minimum=0)
# How many proxies of ours append to X-Forwarded-For in front of gunicorn (1 behind nginx);
# 0 trusts no header and uses the connection's address.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "conversations:index"
LOGOUT_REDIRECT_URL = "login"

# --- Team sign-in: django-allauth, OpenID Connect providers, two-factor sign-in (accounts/sso.py) ---
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_ADAPTER = "accounts.sso.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts.sso.SocialAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_EMAIL_VERIFICATION = "none"
# Local accounts are linked to the provider's person only by an address the provider confirmed.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
# The providers (OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_NAME; OIDC_2_... for more).
SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"OAUTH_PKCE_ENABLED": True, "APPS": env_oidc_providers()}}
OIDC_ORIGINS = oidc_origins(SOCIALACCOUNT_PROVIDERS["openid_connect"]["APPS"])  # their sign-in pages' origins
# Who may come in through a provider: verified addresses of these domains (blank: any), and only
# members of this group (blank: no group needed).
OIDC_ALLOWED_DOMAINS = env_list("OIDC_ALLOWED_DOMAINS", [])
OIDC_REQUIRED_GROUP = env_str("OIDC_REQUIRED_GROUP", "")
# The claim whose values are mirrored into Django groups at every sign-in through a provider.
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
# Password reset by email (allauth's pages) when a mail server is set; in development (DEBUG=1)
# without one, the email is printed to the console. Otherwise those pages answer 404.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "chatsite <noreply@localhost>")
EMAIL_BACKEND = f"django.core.mail.backends.{'smtp' if EMAIL_HOST else 'console'}.EmailBackend"
PASSWORD_RESET_BY_EMAIL = bool(EMAIL_HOST) or DEBUG
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env_str("MFA_TOTP_ISSUER", "chatsite")

# --- HTTPS and cookies ----------------------------------------------------------------
# HTTPS=1 in production (behind a TLS-terminating proxy that sets X-Forwarded-Proto).
HTTPS = env_bool("HTTPS", False)
SESSION_COOKIE_HTTPONLY = True
# The CSRF token reaches htmx through the page (hx-headers), so scripts never need the cookie.
CSRF_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "common.errors.csrf_failure"
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

# Content-Security-Policy (django-csp): every script and style is a file from this site; no
# inline script, no eval, nothing from another origin. htmx is configured to match (base.html).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        # The "Sign in with …" buttons post here and are sent on to the identity providers.
        "form-action": ["'self'", *OIDC_ORIGINS],
        "frame-ancestors": ["'none'"],
    }
}

# A request body above this is refused with 413 before it is read (Django's default is 2.5 MB).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("REQUEST_MAX_BYTES", 1_048_576, minimum=1024)

# --- Internationalisation -------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files (served by whitenoise; no CDN) --------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- The upstream: AI/ML API (any OpenAI-compatible server) ---------------------------
AIMLAPI_API_KEY = env_str("AIMLAPI_API_KEY", "")
AIMLAPI_BASE_URL = env_str("AIMLAPI_BASE_URL", "https://api.aimlapi.com/v1")
AIMLAPI_MODEL = env_str("AIMLAPI_MODEL", "mistralai/mistral-tiny")
AIMLAPI_CONNECT_TIMEOUT = env_float("AIMLAPI_CONNECT_TIMEOUT", 5.0, minimum=0.1)
AIMLAPI_TIMEOUT = env_float("AIMLAPI_TIMEOUT", 60.0, minimum=1.0)
# Resilience: failures before any reply text (no connection, 429, 502/503/504) are tried again
# with exponential back-off and full jitter, within a time budget per turn; after
# AIMLAPI_BREAKER_FAILURES failures in a row the upstream is not asked for a cool-down.
AIMLAPI_RETRIES = env_int("AIMLAPI_RETRIES", 2, minimum=0)
AIMLAPI_RETRY_BASE_DELAY = env_float("AIMLAPI_RETRY_BASE_DELAY", 0.5, minimum=0.0)
AIMLAPI_RETRY_MAX_DELAY = env_float("AIMLAPI_RETRY_MAX_DELAY", 8.0, minimum=0.0)
AIMLAPI_RETRY_AFTER_MAX = env_float("AIMLAPI_RETRY_AFTER_MAX", 20.0, minimum=0.0)
AIMLAPI_TURN_BUDGET = env_float("AIMLAPI_TURN_BUDGET", 90.0, minimum=0.0)
AIMLAPI_BREAKER_FAILURES = env_int("AIMLAPI_BREAKER_FAILURES", 5, minimum=0)
AIMLAPI_BREAKER_WINDOW = env_float("AIMLAPI_BREAKER_WINDOW", 60.0, minimum=1.0)
AIMLAPI_BREAKER_COOLDOWN = env_float("AIMLAPI_BREAKER_COOLDOWN", 30.0, minimum=1.0)

# Stored upstream keys (ProviderKey) are encrypted with Fernet under these keys: comma-separated,
# the first encrypts, every one decrypts (add a new key first, run `manage.py rotate_keys`, then
# drop the old one). Unset: keys cannot be stored in the admin; AIMLAPI_API_KEY still works.
FIELD_ENCRYPTION_KEY = env_fernet_keys("FIELD_ENCRYPTION_KEY")

# The bus of live replies between processes (conversations.generation.relay): REDIS_URL by
# default, another Redis where the cache's should not carry it; "off" keeps the database path.
CHAT_BUS_REDIS_URL = env_str("CHAT_BUS_REDIS_URL", REDIS_URL)
if CHAT_BUS_REDIS_URL == "off":
    CHAT_BUS_REDIS_URL = ""

# --- Chat -----------------------------------------------------------------------------
CHAT_MAX_MESSAGE_CHARS = env_int("CHAT_MAX_MESSAGE_CHARS", 20000, minimum=1)
# Replies are streamed from the upstream; 0 asks for whole replies, for upstreams that cannot stream.
CHAT_STREAMING = env_bool("CHAT_STREAMING", True)
# How often a streaming reply's text is written to the database (and read by other processes).
CHAT_STREAM_SAVE_INTERVAL_MS = env_int("CHAT_STREAM_SAVE_INTERVAL_MS", 250, minimum=10)
# Replies generated at once per process; more wait their turn.
CHAT_MAX_GENERATIONS = env_int("CHAT_MAX_GENERATIONS", 128, minimum=1)
# Open reply streams (server-sent events) at once per person and per reply, across every
# process with REDIS_URL. Each holds a server thread (GUNICORN_THREADS), so no one person may
# hold them all; past a cap the stream is answered 429 with the reason.
CHAT_STREAMS_PER_PERSON = env_int("CHAT_STREAMS_PER_PERSON", 8, minimum=1)
CHAT_STREAMS_PER_REPLY = env_int("CHAT_STREAMS_PER_REPLY", 4, minimum=1)
# Messages a person may send per minute (sends, retries, regenerations, edits); 0 turns it off.
# Counted in the cache: per process by default, shared by every process with REDIS_URL.
CHAT_RATE_LIMIT_PER_MINUTE = env_int("CHAT_RATE_LIMIT_PER_MINUTE", 20, minimum=0)
# Tokens a person may use per day and per calendar month (TIME_ZONE), unless their own quota
# in the admin says otherwise; 0 means unlimited.
CHAT_DAILY_TOKEN_QUOTA = env_int("CHAT_DAILY_TOKEN_QUOTA", 0, minimum=0)
CHAT_MONTHLY_TOKEN_QUOTA = env_int("CHAT_MONTHLY_TOKEN_QUOTA", 0, minimum=0)
# Whether people may create their own account at /accounts/signup/.
ALLOW_SIGNUP = env_bool("ALLOW_SIGNUP", False)
# A model asked for a short title after a conversation's first reply (blank: keep the title
# taken from the first message). Any model the upstream serves, e.g. mistralai/mistral-tiny.
CHAT_AUTO_TITLE_MODEL = env_str("CHAT_AUTO_TITLE_MODEL", "")
# The largest history file (chatsite JSON or ChatGPT's conversations.json) one import accepts.
CHAT_IMPORT_MAX_BYTES = env_int("CHAT_IMPORT_MAX_BYTES", 50 * 1024 * 1024, minimum=1)

# --- Folders and temporary chats (conversations.services.folders, .temporary) ------------
# Hours after its last message that a temporary chat nobody left is deleted (by purge_trash).
TEMPORARY_CHAT_HOURS = env_int("TEMPORARY_CHAT_HOURS", 24, minimum=1)

# --- Spend: prices, money budgets and the running totals the checks read (usage/) --------
# The one currency of the catalogue's prices, the usage rows' costs and the budgets (a code or a sign).
CHAT_CURRENCY = env_str("CHAT_CURRENCY", "EUR")
if len(CHAT_CURRENCY) > 8:
    raise ImproperlyConfigured(f"CHAT_CURRENCY must be a short code such as EUR; got {CHAT_CURRENCY!r}.")
# What a person may spend per day and per calendar month unless their own budget in the admin
# says otherwise, and what the whole site may; 0 means no limit. Groups' budgets are in the admin.
CHAT_DAILY_BUDGET = env_decimal("CHAT_DAILY_BUDGET", "0", minimum="0")
CHAT_MONTHLY_BUDGET = env_decimal("CHAT_MONTHLY_BUDGET", "0", minimum="0")
CHAT_SITE_DAILY_BUDGET = env_decimal("CHAT_SITE_DAILY_BUDGET", "0", minimum="0")
CHAT_SITE_MONTHLY_BUDGET = env_decimal("CHAT_SITE_MONTHLY_BUDGET", "0", minimum="0")

# --- Server time per turn (issue 20): sends in the order they came ----------------------
# Sends (a new chat, a message) handled at once per process; later ones wait their turn, first
# come first served (common.fairness), so a burst is answered in order and words keep flowing.
CHAT_SENDS_AT_ONCE = env_int("CHAT_SENDS_AT_ONCE", 2, minimum=1)
# A Server-Timing header on each response (wall, CPU and queue time; common.timing), read by
# bench/stream_bench.py. Off by default: it tells any client how long the server worked.
CHAT_SERVER_TIMING = env_bool("CHAT_SERVER_TIMING", False)
if CHAT_SERVER_TIMING:  # outermost, so it covers every middleware and the fair queue's wait
    MIDDLEWARE.insert(0, "common.timing.ServerTimingMiddleware")

# --- API: OpenAI-compatible endpoints at /v1/ under personal access tokens (api/) -------
API_ENABLED = env_bool("API_ENABLED", True)
# Group names whose members may use the API; empty: everyone with an account.
API_GROUPS = env_list("API_GROUPS", [])
# Web page origins (https://host) that may call /v1/ from a browser; empty: CORS stays off.
API_CORS_ORIGINS = env_list("API_CORS_ORIGINS", [])

# --- Retention (retention/): how long conversations, the trash and usage content are kept ---
# Days (0: forever). Admin > Retention policy overrides each one that it sets; a group's own
# period (Admin > Group retentions) replaces the conversation period for its members.
# `manage.py apply_retention` applies them (schedule it: README, "Retention and your data").
RETENTION_CONVERSATION_DAYS = env_int("RETENTION_CONVERSATION_DAYS", 0, minimum=0)
RETENTION_TRASH_DAYS = env_int("RETENTION_TRASH_DAYS", 0, minimum=0)
RETENTION_USAGE_CONTENT_DAYS = env_int("RETENTION_USAGE_CONTENT_DAYS", 0, minimum=0)
# Conversations deleted per transaction, so a run never holds the write lock for long.
RETENTION_BATCH_SIZE = env_int("RETENTION_BATCH_SIZE", 100, minimum=1)

# --- Logging: to stderr, with the upstream keys scrubbed from every record ------------
LOGGING = logging_config(env_str("LOG_LEVEL", "INFO"))
