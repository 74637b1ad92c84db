"""A real Celery worker runs a real task through Redis against the test store."""

import os
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.db import connection

from planner.models import TargetDatabase
from planner.tasks import check_target

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.slow]


@pytest.fixture
def celery_worker():
    """A `celery worker` subprocess using the test database (pytest-django's test_ name)."""
    params = connection.get_connection_params()
    store_url = (
        f"postgresql://{params.get('user', 'postgres')}:{params.get('password', '')}@"
        f"{params.get('host', '127.0.0.1')}:{params.get('port', 5432)}/{settings.DATABASES['default']['NAME']}"
    )
    env = dict(
        os.environ,
        DATABASE_URL=store_url,
        REDIS_URL=settings.BROKER_URL,
        SECRET_KEY=settings.SECRET_KEY,
        PLANNER_CREDENTIALS_KEY=settings.CREDENTIALS_KEY,
    )
    queue = f"test-{os.getpid()}"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "planner",
            "worker",
            "--pool",
            "solo",
            "--queues",
            queue,
            "--loglevel",
            "WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        env=env,
    )
    yield queue
    worker.terminate()
    worker.wait(timeout=30)


def test_a_task_runs_in_a_real_worker(celery_worker, demo_target):
    result = check_target.apply_async(args=[demo_target.pk], queue=celery_worker)
    outcome = result.get(timeout=60)
    assert outcome["error"] == ""
    assert outcome["target"] == demo_target.name
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        target = TargetDatabase.objects.get(pk=demo_target.pk)
        if target.server_version:
            break
        time.sleep(0.1)
    assert target.server_version == outcome["server_version"] != ""
