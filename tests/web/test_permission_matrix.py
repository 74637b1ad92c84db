"""Every state-changing URL × every role → the expected status, and nothing changes on a 403."""

import pytest
from django.urls import reverse

from planner.models import AuditEvent, BackfillRun, Phase

pytestmark = pytest.mark.django_db
S = BackfillRun.Status


def pending_first_phase(run) -> str:
    phase = Phase.objects.create(plan=run.phase.plan, position=0, kind="custom", name="first", up_sql="SELECT 1;")
    return reverse("phase-run", args=[phase.pk])


def succeeded_last_phase(run) -> str:
    phase = Phase.objects.create(
        plan=run.phase.plan,
        position=9,
        kind="contract",
        name="last",
        up_sql="SELECT 1;",
        down_sql="SELECT 2;",
        status="succeeded",
    )
    return reverse("phase-rollback", args=[phase.pk])


def pending_phase(run, **fields) -> Phase:
    return Phase.objects.create(
        plan=run.phase.plan, position=5, kind="contract", name="later", up_sql="SELECT 1;", **fields
    )


def schedule_url(run) -> str:
    return reverse("phase-schedule", args=[pending_phase(run).pk])


def approve_url(run) -> str:
    return reverse("phase-approve", args=[pending_phase(run).pk])


def withdraw_url(run) -> str:
    from django.contrib.auth.models import User

    approver = User.objects.create_user("earlier-approver")
    return reverse("phase-withdraw-approval", args=[pending_phase(run, approved_by=approver).pk])


def confirm_deploy_url(run) -> str:
    return reverse("phase-confirm-deploy", args=[pending_phase(run, needs_deploy=True).pk])


def check_validations_url(run) -> str:
    phase = run.phase.plan.phases.get(position=1)
    phase.validations = [{"name": "one", "sql": "SELECT 1", "expected": 1}]
    phase.save()
    return reverse("phase-check-validations", args=[phase.pk])


def app_version(run, **fields):
    from planner.models import ApplicationVersion

    return ApplicationVersion.objects.create(target=run.phase.plan.target, name="app-v1", **fields)


def version_status_url(run) -> str:
    return reverse("version-status", args=[app_version(run, status="deployed").pk])  # DATA asks for retired


def query_delete_url(run) -> str:
    from planner.models import AppQuery

    query = AppQuery.objects.create(
        version=app_version(run), source="pasted", origin="pasted, line 1", sql="SELECT 1", query_hash="0" * 64
    )
    return reverse("query-delete", args=[query.pk])


def withdraw_compat_override_url(run) -> str:
    return reverse("phase-withdraw-compat-override", args=[pending_phase(run, compat_override_reason="earlier").pk])


def sqlx_sample():
    from pathlib import Path

    return sorted((Path(__file__).parents[1] / "compat/samples/app-v1/.sqlx").glob("query-*.json"))[0]


class SqlxFile:
    """An upload in the shared body: the test client reads it for every case, so it never runs dry."""

    name = sqlx_sample().name

    def read(self) -> bytes:
        return sqlx_sample().read_bytes()


ROLES = ("viewer", "release manager", "on-call engineer", None)
# One body for every URL: each view reads the fields it needs.
DATA = {
    "slices": "1",
    "not_before": "2099-01-31T22:00",
    "tz": "Europe/Paris",
    "version": "2024.6.1",
    "name": "app-v9",
    "status": "retired",
    "reason": "checked by the permission matrix",
    "queries": "SELECT id FROM items WHERE id = $1;",
    "files": SqlxFile(),
}

# (name, url builder, status to put the run in first, roles allowed)
CASES = [
    ("pause", lambda run: reverse("run-action", args=[run.pk, "pause"]), S.RUNNING, {"on-call engineer"}),
    ("resume", lambda run: reverse("run-action", args=[run.pk, "resume"]), S.PAUSED, {"on-call engineer"}),
    ("cancel", lambda run: reverse("run-action", args=[run.pk, "cancel"]), S.RUNNING, {"on-call engineer"}),
    ("rollback", lambda run: reverse("run-action", args=[run.pk, "rollback"]), S.SUCCEEDED, {"on-call engineer"}),
    (
        "start-backfill",
        lambda run: reverse("start-backfill", args=[run.phase_id]),
        S.SUCCEEDED,
        {"release manager"},
    ),
    ("phase-run", pending_first_phase, S.SUCCEEDED, {"release manager"}),
    ("phase-rollback", succeeded_last_phase, S.SUCCEEDED, {"on-call engineer"}),
    ("phase-schedule", schedule_url, S.SUCCEEDED, {"release manager"}),
    ("phase-approve", approve_url, S.SUCCEEDED, {"release manager"}),
    ("phase-withdraw-approval", withdraw_url, S.SUCCEEDED, {"release manager"}),
    ("phase-confirm-deploy", confirm_deploy_url, S.SUCCEEDED, {"release manager"}),
    ("phase-check-validations", check_validations_url, S.SUCCEEDED, {"release manager"}),
    (
        "version-add",
        lambda run: reverse("version-add", args=[run.phase.plan.target_id]),
        S.SUCCEEDED,
        {"release manager"},
    ),
    ("version-status", version_status_url, S.SUCCEEDED, {"release manager"}),
    (
        "version-upload-sqlx",
        lambda run: reverse("version-upload-sqlx", args=[app_version(run).pk]),
        S.SUCCEEDED,
        {"release manager"},
    ),
    (
        "version-paste",
        lambda run: reverse("version-paste", args=[app_version(run).pk]),
        S.SUCCEEDED,
        {"release manager"},
    ),
    (  # the empty target has no pg_stat_statements: the failed attempt is shown and audited
        "version-import-stat-statements",
        lambda run: reverse("version-import-stat-statements", args=[app_version(run).pk]),
        S.SUCCEEDED,
        {"release manager"},
    ),
    ("query-delete", query_delete_url, S.SUCCEEDED, {"release manager"}),
    (
        "plan-check-queries",
        lambda run: reverse("plan-check-queries", args=[run.phase.plan_id]),
        S.SUCCEEDED,
        {"release manager", "on-call engineer"},
    ),
    (
        "phase-override-compat",
        lambda run: reverse("phase-override-compat", args=[pending_phase(run).pk]),
        S.SUCCEEDED,
        {"release manager"},
    ),
    ("phase-withdraw-compat-override", withdraw_compat_override_url, S.SUCCEEDED, {"release manager"}),
]


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "no-role")
@pytest.mark.parametrize(("name", "url", "status", "allowed"), CASES, ids=[c[0] for c in CASES])
def test_permission_matrix(client, make_user, backfill_run, role, name, url, status, allowed):
    BackfillRun.objects.filter(pk=backfill_run.pk).update(status=status)
    client.force_login(make_user(role))
    target_url = url(backfill_run)
    before_runs = list(BackfillRun.objects.values_list("pk", "status", "direction"))
    phase_fields = ("pk", "status", "not_before", "not_after", "approved_by", "deploy_confirmed_at", "validated_at")
    before_phases = list(Phase.objects.order_by("pk").values_list(*phase_fields))
    before_events = AuditEvent.objects.count()

    response = client.post(target_url, DATA)

    if role in allowed:
        assert response.status_code in (200, 302), response.content[:500]
        assert AuditEvent.objects.count() > before_events
    else:
        assert response.status_code == 403
        assert list(BackfillRun.objects.values_list("pk", "status", "direction")) == before_runs
        assert list(Phase.objects.order_by("pk").values_list(*phase_fields)) == before_phases
        assert AuditEvent.objects.count() == before_events


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_anonymous_posts_are_sent_to_login(client, backfill_run, name):
    url = next(case[1] for case in CASES if case[0] == name)
    response = client.post(url(backfill_run))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_state_changes_need_a_csrf_token(make_user, backfill_run):
    from django.test import Client

    BackfillRun.objects.filter(pk=backfill_run.pk).update(status=S.RUNNING)
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(make_user("on-call engineer"))
    response = csrf_client.post(reverse("run-action", args=[backfill_run.pk, "pause"]))
    assert response.status_code == 403
    backfill_run.refresh_from_db()
    assert backfill_run.status == S.RUNNING
