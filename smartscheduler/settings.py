"""Settings for Smart Scheduler, read from the environment.

Every variable is optional: unset ones fall back to embedded defaults that run
on one machine with nothing else installed (SQLite, in-memory channel layer,
console email). Production (``DEBUG`` off) refuses to start without a real
secret key and allowed hosts.
"""

from __future__ import annotations

import re
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
    "django_tasks_rq",
    "django_rq",  # its rqworker command runs the tasks when they are queued in Redis
    "djstripe",
    "django_ratelimit",
    "smartscheduler",
    "tenants",
    "audit",
    "billing",
    "booking",
    "agent",
    "voice",
]

MIDDLEWARE = [
    # First, so every log line and every response (even a probe's) carries the id.
    "smartscheduler.middleware.RequestIdMiddleware",
    "smartscheduler.health.HealthCheckMiddleware",  # before the host check: probes use IPs
    "django.middleware.security.SecurityMiddleware",
    "smartscheduler.middleware.ResourcePolicyMiddleware",
    "csp.middleware.CSPMiddleware",
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
# Set, every tenant gets a PostgreSQL database of its own on that server instead
# of a SQLite file: "{id}" in the database name becomes the tenant's id (32 hex
# digits), and a name without "{id}" is a prefix (".../ss_tenant" gives
# "ss_tenant_<id>"). The role needs CREATEDB. See tenants/db.py.
TENANT_DATABASE_URL = env.str("TENANT_DATABASE_URL", default="")
if TENANT_DATABASE_URL and not TENANT_DATABASE_URL.startswith(("postgres://", "postgresql://")):
    raise ImproperlyConfigured("TENANT_DATABASE_URL must be a postgres:// URL.")
# Apps whose tables live in each tenant's own database, never in ``default``.
TENANT_APPS = frozenset({"audit", "booking", "agent", "voice"})

# Background work (reminders, waitlist offers, notifications); every task
# carries the tenant id it works for. The queue lives in the control plane
# (``manage.py db_worker``), or in Redis when REDIS_URL is set (``manage.py
# rqworker --with-scheduler``: the scheduler moves delayed jobs such as
# reminders onto the queue when they are due).
REDIS_URL = env.str("REDIS_URL", default="")
TASKS = {
    "default": {
        "BACKEND": env.str(
            "TASKS_BACKEND",
            default=("smartscheduler.rq_tasks.RQBackend" if REDIS_URL
                     else "django_tasks_db.DatabaseBackend"),
        ),
        "QUEUES": ["default"],
    }
}
# RQ stops a job after DEFAULT_TIMEOUT seconds; the daily backup of every
# business is the longest job, the others take well under a second.
RQ_QUEUES = {"default": {"URL": REDIS_URL or "redis://127.0.0.1:6379/0", "DEFAULT_TIMEOUT": 3600}}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
            # No client-side read timeout: every consumer waits on a blocking
            # pop (BZPOPMIN, 5 s), and redis-py 8's default 5 s socket timeout
            # would cut that wait and tear down every idle websocket.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}],
                       "prefix": "ss"},
        }
    }
    # django-ratelimit's list of supported caches predates Django's own Redis
    # backend, whose add (SET NX) and incr (INCRBY) are atomic: its only complaint
    # is "not officially supported".
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"]
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    # Without REDIS_URL one server process answers every request (the embedded
    # default), so its local memory is the shared cache django-ratelimit asks for.
    # Several server processes need REDIS_URL, and then the check runs in full.
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]

# Rate limits (smartscheduler/ratelimits.py): django-ratelimit counters in the
# default cache. Each rate is "count/period" (s, m, h or d, optionally with a
# multiplier: "30/5m"); RATELIMIT_<NAME> overrides one, e.g. RATELIMIT_SIGNUP_IP=20/h.
# RATELIMIT_ENABLE=false switches every limit off (load tests from one address).
# The chat websocket's limits are AGENT_CHAT_RATE_PER_CONNECTION / _PER_IP (per minute).
RATELIMIT_ENABLE = envbool("RATELIMIT_ENABLE", True)
RATELIMIT_USE_CACHE = "default"
_RATELIMIT_DEFAULTS = {
    "login_ip": "30/5m",  # login attempts per address
    "login_failures_account": "100/h",  # failed logins per account, then a lockout
    "password_reset_ip": "20/h",
    "password_reset_account": "5/h",  # reset emails per address typed in
    "signup_ip": "10/h",  # each signup provisions a database
    "api_ip": "300/m",  # public API calls per address and business
    "api_booking_ip": "60/m",  # API bookings per address and business
    "booking_page_ip": "120/m",  # booking pages per address and business
    "booking_submit_ip": "30/m",  # booking-page forms sent per address and business
    "voice_number": "150/h",  # call webhooks (incoming + turns) per caller and business
    "sms_number": "60/h",  # text messages per sender and business
}
RATELIMITS = {
    name: env.str(f"RATELIMIT_{name.upper()}", default=default)
    for name, default in _RATELIMIT_DEFAULTS.items()
}
for _name, _rate in RATELIMITS.items():
    if not re.fullmatch(r"[1-9][0-9]*/[0-9]*[smhd]", _rate):
        raise ImproperlyConfigured(
            f"RATELIMIT_{_name.upper()} must look like 30/m or 100/h, not {_rate!r}"
        )
# The client's address is REMOTE_ADDR unless RATELIMIT_TRUSTED_PROXIES says how
# many proxies (load balancers) in front of the app append to X-Forwarded-For;
# then it is the address the outermost of them saw, and whatever a client wrote
# into the header itself is ignored. Left at 0, the header is never trusted.
RATELIMIT_TRUSTED_PROXIES = envint("RATELIMIT_TRUSTED_PROXIES", 0)
RATELIMIT_IP_META_KEY = "smartscheduler.ratelimits.client_ip"

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
# Content-Security-Policy (django-csp): nothing by default, then only this
# site's own files. No inline script or style anywhere: templates load static
# files. Django's admin change list inlines one fixed <style> block; its hash
# (checked against Django's template by tests/security/test_headers.py) allows
# exactly that block. Checkout and the billing portal are Stripe pages reached by
# redirect after a form post, which form-action also governs. The chat page
# (agent/views.py) adds its websocket and the owner's sites as frame-ancestors.
DJANGO_ADMIN_CHANGELIST_STYLE_HASH = "'sha256-blvLUW3UscWqsXGByNOqdBboM+ShWAuugp2mC/wbafU='"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", DJANGO_ADMIN_CHANGELIST_STYLE_HASH],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "manifest-src": ["'self'"],
        "form-action": ["'self'", "https://checkout.stripe.com", "https://billing.stripe.com"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
        "frame-ancestors": ["'none'"],
    },
}
# Everything this site serves stays on this site, except what a view marks
# otherwise (the widget script, the framed chat page).
CROSS_ORIGIN_RESOURCE_POLICY = "same-origin"
# Errors: friendly pages without traces (JSON under /api/), CSRF failures included.
CSRF_FAILURE_VIEW = "smartscheduler.views.csrf_failure"
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
# JSON lines by default (one object per record, for the log pipeline); "plain"
# reads better in a terminal. Every record carries the request id and the tenant
# id (smartscheduler/logging.py); messages name rows by id, never a customer.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG else "json")
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured("LOG_FORMAT must be json or plain.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "smartscheduler.logging.RequestContextFilter"}},
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s %(name)s "
                      "[request=%(request_id)s tenant=%(tenant_id)s] %(message)s",
        },
        "json": {"()": "smartscheduler.logging.JsonLinesFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_context"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
