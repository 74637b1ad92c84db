"""Pytest plugin loaded before Django reads its settings (`-p tests.environment` in pyproject.toml).

Without DATABASE_URL the suite runs on the embedded PostgreSQL 18 (started on the first store
connection); with DATABASE_URL (CI's second pass) on that server, e.g. the machine's PostgreSQL 15.
Without REDIS_URL an embedded Redis is started here and stopped when the session ends.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# Test servers keep their data apart from a developer's own `.planner/`.
os.environ.setdefault("PLANNER_DATA_DIR", str(REPO_ROOT / ".planner" / "test"))
os.environ.setdefault("PLANNER_DEMO", "false")
# Each test session has its own Celery queue: two sessions sharing one Redis never run each other's tasks.
os.environ.setdefault("PLANNER_CELERY_QUEUE", f"planner-test-{os.getpid()}")
if os.environ.get("DATABASE_URL"):
    # A throwaway production-like configuration for the external-server pass.
    os.environ.setdefault("SECRET_KEY", "test-only-secret-key-" + "x" * 40)
    os.environ.setdefault("PLANNER_CREDENTIALS_KEY", "m4VjHqv8w3N8p3o9A3YpI5mUQ8m0b6pS0m4rJ8G3hV4=")

_embedded_redis = None
if not os.environ.get("REDIS_URL"):
    from planner.embedded import EmbeddedRedis, SharedUse

    # Shared: two test sessions at once (a developer and an editor plugin) use one Redis.
    _embedded_redis = SharedUse(EmbeddedRedis(Path(os.environ["PLANNER_DATA_DIR"])), "redis")
    os.environ["REDIS_URL"] = _embedded_redis.acquire()


def pytest_unconfigure(config):  # noqa: ARG001 - pytest hook signature
    if _embedded_redis is not None:
        _embedded_redis.release()
