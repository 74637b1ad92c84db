"""Backfill runs through the real Celery path: Redis, worker processes, target PostgreSQL.

Each test checks the data (every row's counter exactly +1, or back where it was) and the state,
and that the progress shown equals what the database holds.
"""

from __future__ import annotations

import pytest

from planner.models import AuditEvent, BackfillRun, Phase
from planner.services import runs
from tests.integration.conftest import ITEMS_ROWS, counters, revive_until, wait_for

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.slow]
S = BackfillRun.Status
SPEC = {
    "table": "items",
    "set": "counter = counter + 1",
    "capture_before_images": True,
    "batch": {"initial": 200, "max": 500, "target_ms": 20},
}


@pytest.fixture
def phase(plan):
    plan.phases.update(status=Phase.Status.SUCCEEDED)  # the expand phase ran: the backfill's gate is open
    return Phase.objects.create(plan=plan, position=2, kind="backfill", name="bump counters", backfill_spec=SPEC)


@pytest.fixture
def manager(make_user):
    return make_user("release manager")


@pytest.fixture
def oncall(make_user):
    return make_user("on-call engineer")


def status_of(run) -> str:
    run.refresh_from_db()
    return run.status


def wait_status(run, *statuses, timeout=90):
    return wait_for(lambda: status_of(run) in statuses and run, timeout, what=f"run status in {statuses}")


def test_a_run_succeeds_exactly_once_and_progress_matches(workers, items_table, phase, manager):
    workers.start()
    run = runs.create_run(manager, phase, spec=SPEC, slice_count=1)
    runs.start(manager, run)
    wait_status(run, S.SUCCEEDED)
    assert counters(items_table) == {1: ITEMS_ROWS}
    assert run.rows_done == ITEMS_ROWS
    assert run.batches_done == run.batches.count() > 1
    assert run.finished_at and run.table_bytes_before and run.table_bytes_after
    assert AuditEvent.objects.filter(action="run.succeeded", actor__isnull=True).count() == 1
    assert run.health["lock_waiters"] == 0 and run.health_read_at  # read by the worker for the run page


def test_pause_resume_then_roll_back(workers, items_table, phase, manager, oncall):
    workers.start()
    run = runs.create_run(manager, phase, spec=SPEC)
    runs.start(manager, run)
    wait_for(lambda: BackfillRun.objects.get(pk=run.pk).rows_done > 0, what="first batches")
    runs.pause(oncall, run, reason="incident")
    wait_status(run, S.PAUSED)
    done_at_pause = counters(items_table).get(1, 0)
    assert 0 < done_at_pause < ITEMS_ROWS
    assert run.rows_done == done_at_pause  # the mirror caught up when the worker stopped
    assert set(counters(items_table)) <= {0, 1}

    runs.resume(oncall, run)
    wait_status(run, S.SUCCEEDED)
    assert counters(items_table) == {1: ITEMS_ROWS}

    runs.roll_back(oncall, run, reason="wrong formula")
    wait_status(run, S.ROLLED_BACK)
    assert counters(items_table) == {0: ITEMS_ROWS}
    actions = list(AuditEvent.objects.filter(object_id=str(run.pk)).values_list("action", flat=True))
    for expected in (
        "run.pause_requested",
        "run.paused",
        "run.resumed",
        "run.succeeded",
        "run.rollback_started",
        "run.rolled_back",
    ):
        assert expected in actions


def test_cancel_stops_and_keeps_what_was_done(workers, items_table, phase, manager, oncall):
    workers.start()
    run = runs.create_run(manager, phase, spec=SPEC)
    runs.start(manager, run)
    wait_for(lambda: BackfillRun.objects.get(pk=run.pk).rows_done > 0, what="first batches")
    runs.cancel(oncall, run)
    wait_status(run, S.CANCELLED)
    done = counters(items_table).get(1, 0)
    assert 0 < done < ITEMS_ROWS and run.rows_done == done


def test_parallel_slices_each_do_their_share(workers, items_table, phase, manager):
    workers.start(concurrency=3)
    run = runs.create_run(manager, phase, spec=SPEC, slice_count=3)
    runs.start(manager, run)
    wait_status(run, S.SUCCEEDED)
    assert counters(items_table) == {1: ITEMS_ROWS}
    assert sorted(run.slices.values_list("rows_done", flat=True)) and all(
        rows > 0 for rows in run.slices.values_list("rows_done", flat=True)
    )
    assert sum(run.slices.values_list("rows_done", flat=True)) == ITEMS_ROWS


def test_a_killed_worker_loses_nothing_and_repeats_nothing(workers, items_table, phase, manager, settings):
    first = workers.start()
    run = runs.create_run(manager, phase, spec=SPEC, slice_count=2)
    runs.start(manager, run)
    wait_for(lambda: BackfillRun.objects.get(pk=run.pk).rows_done > 2000, what="some progress")
    workers.kill(first)
    workers.start()
    # The dead worker's tasks were acknowledged late and are not redelivered before the broker's
    # visibility timeout; the reconcile task (beat) revives the run once its heartbeat is stale.
    settings.PLANNER_BACKFILL_STALE_SECONDS = 3
    run = revive_until(run, S.SUCCEEDED)
    assert counters(items_table) == {1: ITEMS_ROWS}
    assert run.rows_done == ITEMS_ROWS


def test_a_bad_spec_errors_the_run_before_touching_a_row(workers, items_table, phase, manager):
    workers.start()
    bad = {**SPEC, "set": "no_such_column = 1"}
    run = runs.create_run(manager, phase, spec=bad)
    runs.start(manager, run)
    wait_status(run, S.ERRORED)
    assert "no_such_column" in run.last_error
    assert counters(items_table) == {0: ITEMS_ROWS}


def test_a_lost_launch_is_launched_again(workers, items_table, phase, manager, settings):
    """The launch task vanished (broker flushed before a worker took it): beat launches the run again."""
    import redis

    run = runs.start(manager, runs.create_run(manager, phase, spec=SPEC))
    redis.Redis.from_url(settings.BROKER_URL).delete(settings.CELERY_TASK_DEFAULT_QUEUE)  # the launch task is gone
    BackfillRun.objects.filter(pk=run.pk).update(started_at=run.started_at.replace(year=2000))
    settings.PLANNER_BACKFILL_STALE_SECONDS = 3
    workers.start()
    run = revive_until(run, S.SUCCEEDED)
    assert counters(items_table) == {1: ITEMS_ROWS}
