"""The three roles exist with exactly the permissions their jobs need; services enforce them."""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied

from planner.models import AuditEvent, Plan
from planner.services import plans

pytestmark = pytest.mark.django_db


def permissions_of(role):
    return set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))


VIEW = {
    "view_targetdatabase",
    "view_plan",
    "view_phase",
    "view_auditevent",
    "view_applicationversion",
    "view_appquery",
    "view_compatibilityreport",
}


def test_viewer_can_only_view():
    assert permissions_of("viewer") == VIEW


def test_release_managers_keep_versions_and_both_operators_check_queries():
    assert {"manage_versions", "add_compatibilityreport"} <= permissions_of("release manager")
    oncall = permissions_of("on-call engineer")
    assert "add_compatibilityreport" in oncall and "manage_versions" not in oncall


def test_release_manager_plans_but_does_not_control_runs():
    perms = permissions_of("release manager")
    assert {"add_plan", "change_plan", "schedule_plan", "approve_plan", "start_plan"} <= perms
    assert not perms & {"pause_run", "resume_run", "cancel_run", "rollback_run"}


def test_oncall_controls_runs_but_does_not_plan():
    perms = permissions_of("on-call engineer")
    assert {"pause_run", "resume_run", "cancel_run", "rollback_run"} <= perms
    assert not perms & {"add_plan", "change_plan", "schedule_plan", "approve_plan", "start_plan"}


def test_creating_a_plan_needs_the_permission_and_is_audited(make_user, demo_target):
    with pytest.raises(PermissionDenied):
        plans.create_plan(make_user("viewer"), title="x", target=demo_target)
    assert not Plan.objects.exists()

    manager = make_user("release manager")
    plan = plans.create_plan(
        manager,
        title="Add index",
        target=demo_target,
        phases=[{"kind": "expand", "name": "index", "up_sql": "CREATE INDEX CONCURRENTLY i ON t (c);"}],
    )
    assert plan.phases.count() == 1
    event = AuditEvent.objects.get(action="plan.created")
    assert event.actor == manager and event.plan == plan and event.details["phases"] == 1


def test_a_status_change_follows_the_state_machine(make_user, plan):
    manager = make_user("release manager")
    plans.change_plan_status(manager, plan, "scheduled", permission="schedule_plan", reason="window agreed")
    plan.refresh_from_db()
    assert plan.status == "scheduled"
    assert AuditEvent.objects.filter(action="plan.scheduled", details__reason="window agreed").count() == 1

    from planner.models import InvalidTransition

    with pytest.raises(InvalidTransition):
        plans.change_plan_status(manager, plan, "succeeded", permission="start_plan")
    plan.refresh_from_db()
    assert plan.status == "scheduled"


def test_oncall_cannot_schedule_a_plan(make_user, plan):
    with pytest.raises(PermissionDenied):
        plans.change_plan_status(make_user("on-call engineer"), plan, "scheduled", permission="schedule_plan")
    plan.refresh_from_db()
    assert plan.status == "draft"
    assert not AuditEvent.objects.filter(action="plan.scheduled").exists()


@pytest.mark.parametrize("model", [Plan])
def test_every_unlisted_plan_transition_is_rejected(model):
    for source in model.Status.values:
        for destination in model.Status.values:
            instance = model(status=source)
            allowed = destination in model.TRANSITIONS[source]
            assert instance.can_transition_to(destination) == allowed
