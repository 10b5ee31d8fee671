"""Settings for Smart Scheduler, read from the environment.

Every variable is optional: unset ones fall back to embedded defaults that run
on one machine with nothing else installed (SQLite, in-memory channel layer,
console email). Production (``DEBUG`` off) refuses to start without a real
secret key and allowed hosts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# FileAwareEnv lets every secret come from ``<NAME>_FILE`` (Docker/ECS secrets).
env = environ.FileAwareEnv()

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def envbool(name: str, default: bool) -> bool:
    """A boolean that refuses typos: ``DEBUG=ture`` must not silently mean False."""
    raw = env.str(name, default="")
    if raw == "":
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def envint(name: str, default: int) -> int:
    raw = env.str(name, default="")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None


DEBUG = envbool("DEBUG", False)

_DEV_SECRET_KEY = "dev-only-insecure-key-never-use-in-production-0123456789abcdef"  # noqa: S105 - refused when DEBUG is off
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=[])

if DEBUG:
    SECRET_KEY = SECRET_KEY or _DEV_SECRET_KEY
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["localhost", "127.0.0.1", "[::1]", "testserver"]
else:
    if len(SECRET_KEY) < 50 or SECRET_KEY == _DEV_SECRET_KEY or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set to a random string of at least 50 characters "
            "when DEBUG is off (or set DEBUG=true for local development)."
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS must list the host names this site is served on when DEBUG is off."
        )

PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "daphne",
    "smartscheduler.apps.PlatformAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_tasks",
    "django_tasks_db",
    "djstripe",
    "smartscheduler",
    "tenants",
    "billing",
    "booking",
    "agent",
    "voice",
]

MIDDLEWARE = [
    "smartscheduler.health.HealthCheckMiddleware",  # before the host check: probes use IPs
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tenants.middleware.SessionExpiryMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "tenants.middleware.TenantMiddleware",
]

ROOT_URLCONF = "smartscheduler.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "smartscheduler.asgi.application"

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
                "billing.context_processors.billing_notice",
            ],
        },
    },
]

VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

# SQLite: WAL for concurrent readers, a short busy timeout (Channels runs all
# database work of a process on one thread, so a long wait stalls every chat),
# and IMMEDIATE transactions so a check-then-insert holds the write lock.
SQLITE_BUSY_TIMEOUT_MS = envint("SQLITE_BUSY_TIMEOUT_MS", 5000)
TENANT_SQLITE_JOURNAL_MODE = env.str("TENANT_SQLITE_JOURNAL_MODE", default="WAL").upper()
if TENANT_SQLITE_JOURNAL_MODE not in {"WAL", "DELETE", "TRUNCATE", "PERSIST"}:
    raise ImproperlyConfigured(
        "TENANT_SQLITE_JOURNAL_MODE must be WAL (local disk) or DELETE/TRUNCATE/PERSIST "
        "(network file systems)."
    )


def sqlite_options(journal_mode: str) -> dict[str, Any]:
    return {
        "transaction_mode": "IMMEDIATE",
        "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
        "init_command": (
            f"PRAGMA journal_mode={journal_mode};"
            "PRAGMA synchronous=NORMAL;"
            "PRAGMA foreign_keys=ON;"
        ),
    }


_control_db = env.db_url(
    "DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'control.sqlite3'}"
)
if _control_db["ENGINE"] == "django.db.backends.sqlite3":
    # The same SQLite backend, keeping idle connections for reuse (tenants/sqlite_backend).
    _control_db["ENGINE"] = "tenants.sqlite_backend"
    _control_db.setdefault("OPTIONS", {}).update(sqlite_options("WAL"))
    # SQLite creates the file but not its folder: a fresh checkout has no var/.
    Path(_control_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
_control_db["ATOMIC_REQUESTS"] = False
_control_db["CONN_MAX_AGE"] = envint("CONN_MAX_AGE", 0)
DATABASES = {"default": _control_db}
DATABASE_ROUTERS = ["tenants.router.TenantRouter"]

TENANT_DB_DIR = Path(env.str("TENANT_DB_DIR", default=str(VAR_DIR / "tenants")))
TENANT_DATABASE_URL = env.str("TENANT_DATABASE_URL", default="")
# Apps whose tables live in each tenant's own database, never in ``default``.
TENANT_APPS = frozenset({"booking", "agent", "voice"})

# Background work (reminders, waitlist offers, notifications). The queue lives
# in the control plane; every task carries the tenant id it works for.
TASKS = {
    "default": {
        "BACKEND": env.str("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "ss",
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": "ss"},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/dashboard/"
LOGOUT_REDIRECT_URL = "/"

# Sessions: the cookie's age is the absolute limit (set at login, not renewed);
# SessionExpiryMiddleware adds the idle limit and enforces both server-side.
SESSION_COOKIE_AGE = envint("SESSION_ABSOLUTE_SECONDS", 7 * 24 * 3600)
SESSION_IDLE_SECONDS = envint("SESSION_IDLE_SECONDS", 8 * 3600)
SESSION_SAVE_EVERY_REQUEST = False
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_HTTPONLY = True
CSRF_TRUSTED_ORIGINS = [PUBLIC_BASE_URL] if PUBLIC_BASE_URL.startswith("https://") else []

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_HSTS_SECONDS = 2 * 365 * 24 * 3600
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG and envbool("STATIC_MANIFEST", True)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
for _key, _value in _email.items():
    if _key != "EMAIL_BACKEND":
        globals()[_key] = _value
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Smart Scheduler <no-reply@localhost>")

AGENT_PROVIDER = env.str("AGENT_PROVIDER", default="auto")
if AGENT_PROVIDER not in {"auto", "openai", "offline"}:
    raise ImproperlyConfigured("AGENT_PROVIDER must be auto, openai or offline.")
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="")
OPENAI_MODEL = env.str("OPENAI_MODEL", default="gpt-4o")
# The assistant: a turn's time budget for the LLM (the offline agent answers when it
# runs out; the phone flow passes a shorter one), retries, tool rounds, input size,
# how much history the LLM sees, and chat messages allowed per minute.
AGENT_TURN_TIMEOUT_SECONDS = env.float("AGENT_TURN_TIMEOUT_SECONDS", default=8.0)
# A phone turn's budget: Twilio hangs up on a webhook after 15 s.
VOICE_TURN_TIMEOUT_SECONDS = env.float("VOICE_TURN_TIMEOUT_SECONDS", default=4.0)
AGENT_OPENAI_MAX_RETRIES = envint("AGENT_OPENAI_MAX_RETRIES", 0)
AGENT_MAX_TOOL_ROUNDS = envint("AGENT_MAX_TOOL_ROUNDS", 5)
AGENT_MAX_MESSAGE_CHARS = envint("AGENT_MAX_MESSAGE_CHARS", 1000)
AGENT_HISTORY_MESSAGES = envint("AGENT_HISTORY_MESSAGES", 20)
AGENT_CHAT_RATE_PER_CONNECTION = envint("AGENT_CHAT_RATE_PER_CONNECTION", 20)
AGENT_CHAT_RATE_PER_IP = envint("AGENT_CHAT_RATE_PER_IP", 60)

TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default="")
# Text messages to customers (booking.sms): Twilio once it is configured, else
# printed to the console like the default email backend.
SMS_BACKEND = (
    "booking.sms.TwilioBackend"
    if TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER
    else "booking.sms.ConsoleBackend"
)

STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")
STRIPE_PRICE_STARTER = env.str("STRIPE_PRICE_STARTER", default="")
STRIPE_PRICE_STANDARD = env.str("STRIPE_PRICE_STANDARD", default="")
STRIPE_PRICE_PREMIUM = env.str("STRIPE_PRICE_PREMIUM", default="")
# Billing: Stripe when a secret key is set, otherwise plans are set by hand in /admin/.
# The API version is pinned so webhook payloads and API reads have one shape.
STRIPE_API_VERSION = env.str("STRIPE_API_VERSION", default="2026-05-27.dahlia")
STRIPE_LIVE_MODE = STRIPE_SECRET_KEY.startswith("sk_live_")
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"
# Past-due subscriptions keep booking this many days, then public booking pauses.
BILLING_PAST_DUE_GRACE_DAYS = envint("BILLING_PAST_DUE_GRACE_DAYS", 7)
# Local subscription state older than this is re-read from Stripe when entitlements are checked.
BILLING_SYNC_MAX_AGE_SECONDS = envint("BILLING_SYNC_MAX_AGE_SECONDS", 6 * 3600)
# A failed or skipped re-read is not retried for this long (per business).
BILLING_SYNC_RETRY_SECONDS = envint("BILLING_SYNC_RETRY_SECONDS", 300)
BILLING_STRIPE_TIMEOUT_SECONDS = env.float("BILLING_STRIPE_TIMEOUT_SECONDS", default=5.0)

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
