"""Django settings, all read from the environment (see README's configuration table).

Without `DATABASE_URL` the planner's store is the embedded PostgreSQL in the data folder, started
on the first database connection (see planner/store_backend); without `REDIS_URL` the broker is the
embedded Redis that `manage.py up` starts. In that laptop mode secrets are generated once into the
data folder. With `DATABASE_URL` set and DEBUG off (production), SECRET_KEY and
PLANNER_CREDENTIALS_KEY must be given.
"""

from __future__ import annotations

import os
from pathlib import Path

from planner.config import (
    ConfigError,
    env_bool,
    env_int,
    env_list,
    env_secret,
    local_secrets,
    parse_database_url,
    parse_redis_url,
    parse_webhook_url,
)
from planner.embedded import DEFAULT_POSTGRES_PORT, DEFAULT_REDIS_PORT, default_data_root

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_ROOT = default_data_root()

DATABASE_URL = os.environ.get("DATABASE_URL", "").strip()
REDIS_URL = os.environ.get("REDIS_URL", "").strip()
EMBEDDED_STORE = not DATABASE_URL
EMBEDDED_BROKER = not REDIS_URL

DEBUG = env_bool("DEBUG", default=False)
# Parsed first: a malformed URL is a more useful error than the missing secrets it implies.
_store_config = parse_database_url(DATABASE_URL) if DATABASE_URL else None
_broker_config = parse_redis_url(REDIS_URL) if REDIS_URL else None
PRODUCTION = not EMBEDDED_STORE and not DEBUG

_local = local_secrets(DATA_ROOT) if not PRODUCTION else {}
SECRET_KEY = env_secret("SECRET_KEY") or _local.get("SECRET_KEY")
CREDENTIALS_KEY = env_secret("PLANNER_CREDENTIALS_KEY") or _local.get("PLANNER_CREDENTIALS_KEY")
if not SECRET_KEY:
    raise ConfigError("SECRET_KEY is not set: production (DATABASE_URL set, DEBUG off) needs a long random value")
if not CREDENTIALS_KEY:
    raise ConfigError(
        "PLANNER_CREDENTIALS_KEY is not set: production needs a Fernet key to encrypt target passwords; "
        'make one with: python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if not PRODUCTION else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "planner",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "planner.urls"
WSGI_APPLICATION = "planner.wsgi.application"

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

if EMBEDDED_STORE:
    _port_file = DATA_ROOT / "postgres.port"
    DATABASES = {
        "default": {
            "ENGINE": "planner.store_backend",
            "NAME": "planner",
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": _port_file.read_text().strip() if _port_file.exists() else str(DEFAULT_POSTGRES_PORT),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    }
else:
    DATABASES = {"default": _store_config}

if EMBEDDED_BROKER:
    _redis_port_file = DATA_ROOT / "redis.port"
    _redis_port = _redis_port_file.read_text().strip() if _redis_port_file.exists() else DEFAULT_REDIS_PORT
    BROKER_URL = f"redis://127.0.0.1:{_redis_port}/0"
else:
    BROKER_URL = _broker_config

CELERY_BROKER_URL = BROKER_URL
CELERY_RESULT_BACKEND = BROKER_URL
# One queue per installation; tests give each session its own so parallel sessions never share work.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("PLANNER_CELERY_QUEUE", "planner")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Longer than any task's bounded slice of work, so a slow task is not redelivered while it runs.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
PLANNER_BACKFILL_STINT_SECONDS = env_int("PLANNER_BACKFILL_STINT_SECONDS", 20, minimum=1)
PLANNER_BACKFILL_STALE_SECONDS = env_int("PLANNER_BACKFILL_STALE_SECONDS", 90, minimum=2)
# A killed worker's slice can be taken over once its lease has expired (renewed by every batch).
PLANNER_BACKFILL_LEASE_SECONDS = env_int("PLANNER_BACKFILL_LEASE_SECONDS", 60, minimum=2)
CELERY_BEAT_SCHEDULE: dict = {
    # Revive backfill slices whose worker died (heartbeat older than PLANNER_BACKFILL_STALE_SECONDS).
    "reconcile-backfills": {"task": "planner.tasks.reconcile_backfills", "schedule": 30.0},
    # Start phases whose window opened and whose gates are satisfied; report windows that closed.
    "start-due-phases": {"task": "planner.tasks.start_due_phases", "schedule": 30.0},
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "plan-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or DATA_ROOT / "static")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# A .sqlx directory uploaded on the versions page holds one small file per query: often more than
# Django's default of 100 files (the page also caps their size, see planner/views/compat.py).
DATA_UPLOAD_MAX_NUMBER_FILES = 5000

# Slack-compatible notifications; the URL often embeds a token, so it is read like a secret.
PLANNER_WEBHOOK_URL = parse_webhook_url(env_secret("PLANNER_WEBHOOK_URL") or "")

# Demo data on first `up`: on by default on a laptop, off by default in production.
PLANNER_DEMO = env_bool("PLANNER_DEMO", default=EMBEDDED_STORE)
PLANNER_DEMO_DATABASE = os.environ.get("PLANNER_DEMO_DATABASE", "planner_demo")
PLANNER_DEMO_USERS = env_int("PLANNER_DEMO_USERS", 200_000, minimum=0)
PLANNER_DEMO_ORDERS = env_int("PLANNER_DEMO_ORDERS", 500_000, minimum=0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
