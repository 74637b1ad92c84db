"""Fixtures for tests that run real Celery workers against the test store and a real target."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import psycopg
import pytest
from django.conf import settings
from django.db import connection


def store_url() -> str:
    """The URL of pytest-django's test database, for worker subprocesses."""
    params = connection.get_connection_params()
    password = params.get("password", "")
    return (
        f"postgresql://{params.get('user', 'postgres')}:{password}@{params.get('host', '127.0.0.1')}:"
        f"{params.get('port', 5432)}/{settings.DATABASES['default']['NAME']}"
    )


class Workers:
    """Start and kill real `celery worker` processes on a private queue and Redis database."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.processes: list[subprocess.Popen] = []

    def start(self, concurrency: int = 2) -> subprocess.Popen:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "planner",
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "WARNING",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--hostname",
                f"test-{uuid.uuid4().hex[:8]}@%h",
            ],
            env=self.env,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def start_crashing(self, crash_at_batch: int) -> subprocess.Popen:
        """A worker that SIGKILLs itself after the N-th batch commits, before mirroring it."""
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.crashing_worker", str(crash_at_batch)],
            env=self.env,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen) -> None:
        """kill -9 of the worker and everything it started: nothing gets to clean up."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def workers(settings):
    """Workers share the store and the broker with this test process; tasks go to the default queue."""
    import redis

    broker = redis.Redis.from_url(settings.BROKER_URL)
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    broker.delete(queue)  # nothing left over from an earlier test is delivered to these workers
    env = dict(
        os.environ,
        DATABASE_URL=store_url(),
        REDIS_URL=settings.BROKER_URL,
        SECRET_KEY=settings.SECRET_KEY,
        PLANNER_CREDENTIALS_KEY=settings.CREDENTIALS_KEY,
        PLANNER_BACKFILL_STINT_SECONDS="2",
        PLANNER_BACKFILL_LEASE_SECONDS="4",
    )
    pool = Workers(env)
    yield pool
    pool.stop_all()
    broker.delete(queue)


ITEMS_ROWS = 20_000


@pytest.fixture
def items_table(target_dsn):
    """items(id, counter, note): the backfill adds 1 to counter, so double or lost work shows."""
    with psycopg.connect(target_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE items (id bigint PRIMARY KEY, counter integer NOT NULL, note text);"
            f"INSERT INTO items SELECT g, g % 7, 'n' || g FROM generate_series(1, {ITEMS_ROWS}) g;"
        )
        conn.execute("VACUUM ANALYZE items")
    return target_dsn


def counters(dsn: str) -> dict[int, int]:
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute("SELECT counter - id % 7, count(*) FROM items GROUP BY 1").fetchall())


def revive_until(run, status: str, timeout: float = 120):
    """Play the beat's reconcile task until the run reaches `status` (stale heartbeats are revived)."""
    from planner.models import BackfillRun
    from planner.tasks import reconcile_backfills

    def step():
        reconcile_backfills()  # what beat runs every 30 s, called here in the test process
        return BackfillRun.objects.get(pk=run.pk).status == status

    wait_for(step, timeout=timeout, interval=2, what=f"run to reach {status}")
    run.refresh_from_db()
    return run


def wait_for(predicate, timeout: float = 60, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
