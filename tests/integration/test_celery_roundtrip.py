"""A real Celery worker runs a real task through Redis against the test store."""

import pytest

from planner.models import TargetDatabase
from planner.tasks import check_target
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.slow]


def test_a_task_runs_in_a_real_worker(workers, demo_target):
    workers.start(concurrency=1)
    outcome = check_target.delay(demo_target.pk).get(timeout=60)
    assert outcome["error"] == ""
    assert outcome["target"] == demo_target.name
    target = wait_for(
        lambda: TargetDatabase.objects.filter(pk=demo_target.pk).exclude(server_version="").first(),
        timeout=10,
        what="the worker's write to the store",
    )
    assert target.server_version == outcome["server_version"] != ""
