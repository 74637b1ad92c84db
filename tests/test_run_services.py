"""Run state changes through services: permissions, the state machine, audit, idempotent clicks."""

import pytest
from django.core.exceptions import PermissionDenied

from planner.models import AuditEvent, BackfillRun, InvalidTransition
from planner.services import runs

pytestmark = pytest.mark.django_db
S = BackfillRun.Status


def set_status(run, status, direction="forward"):
    BackfillRun.objects.filter(pk=run.pk).update(status=status, direction=direction)
    run.refresh_from_db()
    return run


def test_a_run_gets_one_slice_row_per_slice(backfill_phase, make_user):
    run = runs.create_run(make_user("release manager"), backfill_phase, spec={"table": "t"}, slice_count=4)
    assert list(run.slices.values_list("index", flat=True)) == [0, 1, 2, 3]
    assert run.name == f"plan{backfill_phase.plan_id}-phase{backfill_phase.pk}-run{run.pk}"


def test_only_release_managers_start_runs(backfill_phase, make_user):
    with pytest.raises(PermissionDenied):
        runs.create_run(make_user("on-call engineer"), backfill_phase, spec={})
    assert not BackfillRun.objects.exists()


def test_pause_is_a_request_the_worker_completes(backfill_run, make_user):
    set_status(backfill_run, S.RUNNING)
    oncall = make_user("on-call engineer")
    runs.pause(oncall, backfill_run, reason="incident 42")
    backfill_run.refresh_from_db()
    assert backfill_run.status == S.PAUSING
    event = AuditEvent.objects.get(action="run.pause_requested")
    assert event.actor == oncall and event.details == {"reason": "incident 42"}


def test_pausing_twice_is_audited_once(backfill_run, make_user):
    set_status(backfill_run, S.RUNNING)
    oncall = make_user("on-call engineer")
    runs.pause(oncall, backfill_run)
    runs.pause(oncall, backfill_run)
    assert AuditEvent.objects.filter(action="run.pause_requested").count() == 1


def test_viewers_and_release_managers_cannot_pause(backfill_run, make_user):
    set_status(backfill_run, S.RUNNING)
    for role in ("viewer", "release manager"):
        with pytest.raises(PermissionDenied):
            runs.pause(make_user(role), backfill_run)
    backfill_run.refresh_from_db()
    assert backfill_run.status == S.RUNNING


def test_resume_requeues_a_paused_run(backfill_run, make_user):
    set_status(backfill_run, S.PAUSED)
    runs.resume(make_user("on-call engineer"), backfill_run)
    backfill_run.refresh_from_db()
    assert backfill_run.status == S.ENQUEUED


def test_cancel_of_a_paused_run_is_immediate(backfill_run, make_user):
    set_status(backfill_run, S.PAUSED)
    runs.cancel(make_user("on-call engineer"), backfill_run)
    backfill_run.refresh_from_db()
    assert backfill_run.status == S.CANCELLED
    assert backfill_run.finished_at is not None


def test_cancel_of_a_running_run_waits_for_the_worker(backfill_run, make_user):
    set_status(backfill_run, S.RUNNING)
    runs.cancel(make_user("on-call engineer"), backfill_run)
    backfill_run.refresh_from_db()
    assert backfill_run.status == S.CANCELLING


def test_rollback_of_a_succeeded_run(backfill_run, make_user):
    set_status(backfill_run, S.SUCCEEDED)
    runs.roll_back(make_user("on-call engineer"), backfill_run)
    backfill_run.refresh_from_db()
    assert (backfill_run.status, backfill_run.direction) == (S.ENQUEUED, "rollback")


def test_rollback_needs_a_stopped_run(backfill_run, make_user):
    set_status(backfill_run, S.RUNNING)
    with pytest.raises(InvalidTransition, match="pause the run"):
        runs.roll_back(make_user("on-call engineer"), backfill_run)


def test_rollback_needs_before_images_or_a_reverse_expression(backfill_phase, make_user):
    run = runs.create_run(make_user("release manager"), backfill_phase, spec={"table": "t", "set": "a = 1"})
    set_status(run, S.SUCCEEDED)
    with pytest.raises(InvalidTransition, match="cannot be rolled back"):
        runs.roll_back(make_user("on-call engineer"), run)


def test_every_unlisted_run_transition_is_rejected():
    listed = 0
    for source in S.values:
        for destination in S.values:
            run = BackfillRun(status=source)
            assert run.can_transition_to(destination) == (destination in BackfillRun.TRANSITIONS[source])
            listed += destination in BackfillRun.TRANSITIONS[source]
    assert set(BackfillRun.TRANSITIONS) == set(S.values)
    assert listed > 0
