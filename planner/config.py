"""Strict reading of the environment: every bad value is a ConfigError naming the setting and the fix.

Settings, `manage.py` and `up` use these helpers so a typo in production fails at start with one
clear line instead of a traceback or, worse, a silently wrong default.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit


class ConfigError(Exception):
    """A setting in the environment is missing or malformed; str() is the one line shown to users."""


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean: use true or false")


def env_int(name: str, default: int, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_secret(name: str) -> str | None:
    """A secret from `NAME`, or from the file named by `NAME_FILE` (Docker/Kubernetes secrets)."""
    value = os.environ.get(name)
    if value:
        return value
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as error:
            raise ConfigError(f"{name}_FILE={file_name}: cannot read it ({error.strerror})") from None
    return None


def parse_database_url(url: str) -> dict:
    """DATABASE_URL → Django DATABASES entry; only PostgreSQL is accepted for the planner's store."""
    import dj_database_url

    scheme = urlsplit(url).scheme
    if scheme not in ("postgres", "postgresql", "pgsql"):
        raise ConfigError(
            f"DATABASE_URL must be a PostgreSQL URL like postgresql://user:password@host:5432/planner "
            f"(got scheme {scheme or 'none'!r}); unset it to use the embedded PostgreSQL"
        )
    try:
        parsed = urlsplit(url)
        parsed.port  # noqa: B018 - raises ValueError on a non-numeric port
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError as error:
        raise ConfigError(
            f"DATABASE_URL is malformed ({error}): expected postgresql://user:password@host:5432/name"
        ) from None
    if not config.get("NAME"):
        raise ConfigError("DATABASE_URL names no database: expected postgresql://user:password@host:5432/name")
    return config


def parse_redis_url(url: str) -> str:
    parsed = urlsplit(url)
    if parsed.scheme not in ("redis", "rediss", "redis+socket", "unix"):
        raise ConfigError(
            f"REDIS_URL must look like redis://host:6379/0 (got scheme {parsed.scheme or 'none'!r}); "
            "unset it to use the embedded Redis"
        )
    try:
        parsed.port  # noqa: B018
    except ValueError:
        raise ConfigError(f"REDIS_URL has a bad port: {url!r}; expected redis://host:6379/0") from None
    return url


def local_secrets(data_root: Path) -> dict[str, str]:
    """Secrets for a laptop install, generated once into the git-ignored data folder."""
    from cryptography.fernet import Fernet

    path = data_root / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    data_root.mkdir(parents=True, exist_ok=True)
    values = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "PLANNER_CREDENTIALS_KEY": Fernet.generate_key().decode(),
    }
    path.touch(mode=0o600)
    path.write_text(json.dumps(values))
    return values


def parse_webhook_url(url: str) -> str:
    """PLANNER_WEBHOOK_URL: empty (no notifications) or an http(s) URL with a host."""
    url = url.strip()
    if url and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname):
        raise ConfigError("PLANNER_WEBHOOK_URL must be an http:// or https:// URL; unset it to send no notifications")
    return url
