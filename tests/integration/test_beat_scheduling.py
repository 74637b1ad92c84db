"""Beat's `start_due_phases` task in a real Celery worker: a due, approved phase runs on the target."""

from datetime import timedelta

import psycopg
import pytest
from django.utils import timezone

from planner.models import Phase
from planner.services import schedule
from planner.tasks import start_due_phases
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.slow]


def test_a_worker_starts_a_due_phase_and_runs_it(workers, make_user, plan, target_dsn):
    with psycopg.connect(target_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id bigint PRIMARY KEY)")
    phase = plan.phases.get()
    schedule.approve(make_user("release manager"), phase)
    Phase.objects.filter(pk=phase.pk).update(not_before=timezone.now() - timedelta(seconds=1))
    workers.start(concurrency=2)

    outcome = start_due_phases.delay().get(timeout=60)

    assert outcome["started"] == [phase.pk]
    wait_for(lambda: Phase.objects.get(pk=phase.pk).status == "succeeded", timeout=60, what="the phase's SQL")
    with psycopg.connect(target_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pg_attribute WHERE attname = 'v'").fetchone()[0] == 1
