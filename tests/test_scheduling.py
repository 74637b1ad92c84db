"""Scheduling services: windows, each gate, approval rules, beat's start of due phases, missed windows."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from planner.models import AuditEvent, BackfillRun, InvalidTransition, Phase, Plan
from planner.services import gates, phases, schedule

pytestmark = pytest.mark.django_db
NOW = timezone.now


@pytest.fixture
def users_table(target_dsn):
    with psycopg.connect(target_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id bigint PRIMARY KEY, email text)")
        conn.execute("INSERT INTO users SELECT g, 'u' || g FROM generate_series(1, 10) g")
    return target_dsn


@pytest.fixture
def author(make_user):
    return make_user("release manager")


@pytest.fixture
def two_phases(plan, author, users_table):
    """Phase 1 (succeeded) has a validation; phase 2 waits for it."""
    plan.owner = author
    plan.save()
    first = plan.phases.get()
    first.status = Phase.Status.SUCCEEDED
    first.validations = [{"name": "ten users", "sql": "SELECT count(*) FROM users", "expected": 10}]
    first.save()
    second = Phase.objects.create(
        plan=plan, position=2, kind="contract", name="Index", up_sql="CREATE INDEX users_email ON users (email);"
    )
    return first, second


def gate(phase, key, **kwargs):
    phase = Phase.objects.select_related("plan").get(pk=phase.pk)
    return next(g for g in gates.evaluate(phase, **kwargs) if g.key == key)


# --- windows ---------------------------------------------------------------------------------


def test_it_schedules_a_window_and_audits_it(author, two_phases):
    _, second = two_phases
    start = NOW() + timedelta(hours=1)
    schedule.set_window(author, second, not_before=start, not_after=start + timedelta(hours=2))
    second.refresh_from_db()
    assert second.not_before == start
    assert second.plan.status == Plan.Status.SCHEDULED
    event = AuditEvent.objects.get(action="phase.scheduled")
    assert event.details["not_before"] == start.isoformat() and event.actor == author


def test_a_window_must_end_after_it_starts(author, two_phases):
    start = NOW() + timedelta(hours=1)
    with pytest.raises(ValueError, match="end after it starts"):
        schedule.set_window(author, two_phases[1], not_before=start, not_after=start)


def test_viewers_and_oncall_cannot_schedule(make_user, two_phases):
    for role in ("viewer", "on-call engineer"):
        with pytest.raises(PermissionDenied):
            schedule.set_window(make_user(role), two_phases[1], not_before=NOW(), not_after=None)


def test_the_window_is_a_gate(author, two_phases):
    _, second = two_phases
    second.not_before = NOW() + timedelta(minutes=5)
    second.save()
    assert gate(second, "window").open is False
    assert "opens at" in gate(second, "window").detail
    assert gate(second, "window", now=NOW() + timedelta(minutes=6)).open is True


# --- validations -----------------------------------------------------------------------------


def test_validations_of_the_previous_phase_pass_and_are_stored(two_phases):
    first, second = two_phases
    assert gate(second, "validations").open is None  # never checked: unknown on the page
    assert gate(second, "validations", live=True).open is True
    first.refresh_from_db()
    assert (
        first.validation_results == [{"name": "ten users", "ok": True, "value": 10, "expected": 10, "error": ""}]
        and first.validated_at
    )


def test_a_failing_validation_closes_the_gate_with_the_value(two_phases, users_table):
    first, second = two_phases
    with psycopg.connect(users_table, autocommit=True) as conn:
        conn.execute("DELETE FROM users WHERE id = 1")
    closed = gate(second, "validations", live=True)
    assert closed.open is False and "returned 9, expected 10" in closed.detail


def test_validations_run_read_only(two_phases, users_table):
    first, second = two_phases
    first.validations = [{"name": "sneaky", "sql": "DELETE FROM users RETURNING 1", "expected": 1}]
    first.save()
    closed = gate(second, "validations", live=True)
    assert closed.open is False and "read-only transaction" in closed.detail
    with psycopg.connect(users_table) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 10


def test_a_slow_validation_is_cut_by_its_statement_timeout(two_phases, monkeypatch):
    from planner.pg import checks

    first, second = two_phases
    first.validations = [{"name": "slow", "sql": "SELECT pg_sleep(5)", "expected": ""}]
    first.save()
    monkeypatch.setattr(checks, "CHECK_STATEMENT_TIMEOUT_MS", 200)
    monkeypatch.setattr(checks.run_checks, "__kwdefaults__", {"statement_timeout_ms": 200})
    closed = gate(second, "validations", live=True)
    assert closed.open is False and "statement timeout" in closed.detail


def test_starting_runs_validations_live(author, two_phases, users_table):
    first, second = two_phases
    with psycopg.connect(users_table, autocommit=True) as conn:
        conn.execute("INSERT INTO users VALUES (11, 'x')")
    with pytest.raises(InvalidTransition, match="ten users: returned 11, expected 10"):
        phases.request_run(author, second)
    second.refresh_from_db()
    assert second.status == "pending"


def test_check_validations_stores_and_audits(author, two_phases):
    results = schedule.check_validations(author, two_phases[0])
    assert results[0]["ok"] is True
    assert AuditEvent.objects.get(action="phase.validated").details == {"passed": True}


# --- approval --------------------------------------------------------------------------------


def test_the_author_cannot_approve_a_high_risk_plan(author, two_phases):
    _, second = two_phases
    Plan.objects.filter(pk=second.plan_id).update(high_risk=True)
    second.refresh_from_db()
    with pytest.raises(InvalidTransition, match="other than its author"):
        schedule.approve(author, second)
    assert not AuditEvent.objects.filter(action="phase.approved").exists()


def test_a_second_release_manager_approves_a_high_risk_plan(make_user, author, two_phases):
    _, second = two_phases
    Plan.objects.filter(pk=second.plan_id).update(high_risk=True)
    second.refresh_from_db()
    other = make_user("release manager")
    schedule.approve(other, second)
    schedule.approve(other, second)  # a double click: one audit entry
    assert gate(second, "approval").open is True
    assert AuditEvent.objects.filter(action="phase.approved").count() == 1
    second.refresh_from_db()
    assert second.approved_by == other


def test_the_author_cannot_start_a_high_risk_phase_by_hand_without_approval(author, two_phases):
    _, second = two_phases
    Plan.objects.filter(pk=second.plan_id).update(high_risk=True)
    with pytest.raises(InvalidTransition, match="other than the plan's author"):
        phases.request_run(author, Phase.objects.get(pk=second.pk))


def test_a_release_manager_starting_an_ordinary_phase_approves_it(author, two_phases):
    _, second = two_phases
    phases.request_run(author, second)
    second.refresh_from_db()
    assert second.status == "running" and second.approved_by == author


def test_viewer_and_oncall_cannot_approve(make_user, two_phases):
    for role in ("viewer", "on-call engineer"):
        with pytest.raises(PermissionDenied):
            schedule.approve(make_user(role), two_phases[1])


def test_changing_the_sql_withdraws_the_approval(make_user, author, two_phases):
    from planner.services import plans

    _, second = two_phases
    schedule.approve(make_user("release manager"), second)
    plans.update_phase_sql(author, second, up_sql="SELECT 2;", down_sql="")
    second.refresh_from_db()
    assert second.approved_by is None
    assert AuditEvent.objects.get(action="phase.sql_changed").details["approval_withdrawn"] is True


# --- application deployed ----------------------------------------------------------------------


def test_a_deploy_gate_needs_a_confirmed_version(author, two_phases):
    _, second = two_phases
    Phase.objects.filter(pk=second.pk).update(needs_deploy=True)
    assert gate(second, "deploy").open is False
    with pytest.raises(InvalidTransition, match="confirm the deployed version"):
        phases.request_run(author, Phase.objects.get(pk=second.pk))
    with pytest.raises(ValueError, match="name the application version"):
        schedule.confirm_deployed(author, second, version="  ")
    schedule.confirm_deployed(author, second, version="2024.6.1")
    assert gate(second, "deploy").open is True
    assert AuditEvent.objects.get(action="phase.deploy_confirmed").details == {"version": "2024.6.1"}


def test_recipes_deploy_gates_become_the_flag(make_user, demo_target):
    from planner.services.plans import create_plan

    plan = create_plan(
        make_user("release manager"),
        title="t",
        target=demo_target,
        phases=[
            {"kind": "expand", "name": "a", "runbook": {"gate": "Deploy the application version that writes x."}},
            {"kind": "contract", "name": "b", "runbook": {"gate": "The backfill succeeded."}},
        ],
    )
    assert list(plan.phases.order_by("position").values_list("needs_deploy", flat=True)) == [True, False]


# --- beat ------------------------------------------------------------------------------------------


def test_beat_starts_a_due_approved_phase(make_user, two_phases, users_table):
    _, second = two_phases
    schedule.approve(make_user("release manager"), second)
    Phase.objects.filter(pk=second.pk).update(not_before=NOW() - timedelta(minutes=1))

    step = schedule.start_due_phases()

    assert step.started == [second.pk]
    second.refresh_from_db()
    assert second.status == "running"
    event = AuditEvent.objects.get(action="phase.started")
    assert event.actor_name == "system"
    phases.execute(second.pk, "up")  # what the worker does with the task beat queued
    second.refresh_from_db()
    assert second.status == "succeeded", second.last_error
    with psycopg.connect(users_table) as conn:
        assert conn.execute("SELECT to_regclass('users_email')::text").fetchone()[0] == "users_email"
    assert schedule.start_due_phases().started == []  # nothing twice


def test_beat_waits_for_an_approval(two_phases):
    _, second = two_phases
    Phase.objects.filter(pk=second.pk).update(not_before=NOW() - timedelta(minutes=1))
    step = schedule.start_due_phases()
    assert step.started == [] and any("needs approval" in why for why in step.waiting[second.pk])
    assert Phase.objects.get(pk=second.pk).status == "pending"


def test_beat_does_not_start_before_the_window(make_user, two_phases):
    _, second = two_phases
    schedule.approve(make_user("release manager"), second)
    Phase.objects.filter(pk=second.pk).update(not_before=NOW() + timedelta(minutes=10))
    assert schedule.start_due_phases().started == []
    Phase.objects.filter(pk=second.pk).update(not_before=NOW() - timedelta(seconds=1))  # time passes
    assert schedule.start_due_phases().started == [second.pk]


def test_beat_waits_for_failing_validations(make_user, two_phases, users_table):
    _, second = two_phases
    schedule.approve(make_user("release manager"), second)
    Phase.objects.filter(pk=second.pk).update(not_before=NOW() - timedelta(minutes=1))
    with psycopg.connect(users_table, autocommit=True) as conn:
        conn.execute("DELETE FROM users")
    step = schedule.start_due_phases()
    assert step.started == [] and "returned 0, expected 10" in step.waiting[second.pk][0]
    assert Phase.objects.get(pk=second.pk).status == "pending"


def test_beat_starts_a_backfill_phase_as_a_run(make_user, backfill_phase):
    schedule.approve(make_user("release manager"), backfill_phase)
    Phase.objects.filter(pk=backfill_phase.pk).update(not_before=NOW() - timedelta(seconds=1))
    step = schedule.start_due_phases()
    assert step.started == [backfill_phase.pk]
    run = BackfillRun.objects.get(phase=backfill_phase)
    assert run.status == "enqueued" and run.spec == backfill_phase.backfill_spec and run.created_by is None


def test_a_missed_window_is_reported_once_and_not_started(make_user, two_phases):
    _, second = two_phases
    schedule.approve(make_user("release manager"), second)
    Phase.objects.filter(pk=second.pk).update(
        not_before=NOW() - timedelta(hours=2), not_after=NOW() - timedelta(hours=1)
    )
    step = schedule.start_due_phases()
    assert step.missed == [second.pk] and step.started == []
    assert schedule.start_due_phases().missed == []
    second.refresh_from_db()
    assert second.status == "pending" and second.window_missed_at
    assert AuditEvent.objects.filter(action="phase.window_missed").count() == 1


def test_rescheduling_clears_a_missed_window(author, two_phases):
    _, second = two_phases
    Phase.objects.filter(pk=second.pk).update(not_after=NOW() - timedelta(hours=1), window_missed_at=NOW())
    schedule.set_window(author, second, not_before=NOW() + timedelta(hours=1), not_after=None)
    second.refresh_from_db()
    assert second.window_missed_at is None
