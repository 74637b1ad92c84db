"""Plan page scheduling and sign-off forms, the agenda, and the list's constant number of queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from planner.models import AuditEvent, Phase, Plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(client, make_user):
    user = make_user("release manager")
    client.force_login(user)
    return user


def texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_a_window_typed_in_paris_is_stored_in_utc(client, manager, plan):
    phase = plan.phases.get()
    response = client.post(
        reverse("phase-schedule", args=[phase.pk]),
        {"not_before": "2099-01-31T22:00", "not_after": "2099-02-01T02:30", "tz": "Europe/Paris"},
    )
    assert response.status_code == 302 and response["Location"].endswith(f"#phase-{phase.pk}")
    phase.refresh_from_db()
    assert phase.not_before == datetime(2099, 1, 31, 21, 0, tzinfo=UTC)
    assert phase.not_after == datetime(2099, 2, 1, 1, 30, tzinfo=UTC)
    page = client.get(reverse("plan-detail", args=[plan.pk])).content.decode()
    assert '<time datetime="2099-01-31T21:00:00+00:00" data-local>2099-01-31 21:00 UTC</time>' in page
    assert 'value="2099-01-31T21:00"' in page and "data-browser-tz" in page


def test_a_bad_timezone_or_time_saves_nothing(client, manager, plan):
    phase = plan.phases.get()
    for data in ({"not_before": "2099-01-31T22:00", "tz": "Mars/Olympus"}, {"not_before": "tomorrow", "tz": "UTC"}):
        response = client.post(reverse("phase-schedule", args=[phase.pk]), data)
        assert response.status_code == 302
        assert "was not scheduled" in texts(response)[0]
    phase.refresh_from_db()
    assert phase.not_before is None and not AuditEvent.objects.filter(action="phase.scheduled").exists()


def test_a_window_ending_before_it_starts_is_refused(client, manager, plan):
    phase = plan.phases.get()
    response = client.post(
        reverse("phase-schedule", args=[phase.pk]),
        {"not_before": "2099-01-31T22:00", "not_after": "2099-01-31T21:00", "tz": "UTC"},
    )
    assert "must end after it starts" in texts(response)[0]
    assert Phase.objects.get(pk=phase.pk).not_before is None


def test_the_author_of_a_high_risk_plan_sees_no_approve_button_and_is_refused(client, manager, plan):
    Plan.objects.filter(pk=plan.pk).update(high_risk=True, owner=manager)
    phase = plan.phases.get()
    page = client.get(reverse("plan-detail", args=[plan.pk])).content.decode()
    assert "Approve phase 1" not in page and "another release manager approves it" in page
    response = client.post(reverse("phase-approve", args=[phase.pk]))
    assert "other than its author" in texts(response)[0]
    assert Phase.objects.get(pk=phase.pk).approved_by is None


def test_a_second_release_manager_approves_from_the_plan_page(client, make_user, plan):
    author = make_user("release manager")
    Plan.objects.filter(pk=plan.pk).update(high_risk=True, owner=author)
    second = make_user("release manager")
    client.force_login(second)
    phase = plan.phases.get()
    assert "Approve phase 1" in client.get(reverse("plan-detail", args=[plan.pk])).content.decode()
    client.post(reverse("phase-approve", args=[phase.pk]))
    assert Phase.objects.get(pk=phase.pk).approved_by == second
    page = client.get(reverse("plan-detail", args=[plan.pk])).content.decode()
    assert f"by {second.username}" in page and "Withdraw approval" in page


def test_the_plan_page_shows_gates_and_validation_results(client, manager, plan):
    first = plan.phases.get()
    first.status = "succeeded"
    first.validations = [{"name": "column v exists", "sql": "SELECT 1", "expected": 1}]
    first.validation_results = [{"name": "column v exists", "ok": False, "value": 0, "expected": 1, "error": ""}]
    first.validated_at = timezone.now()
    first.save()
    Phase.objects.create(plan=plan, position=2, kind="contract", name="c", up_sql="SELECT 1;", needs_deploy=True)
    page = client.get(reverse("plan-detail", args=[plan.pk])).content.decode()
    assert "column v exists: returned 0, expected 1" in page
    assert "a release manager must confirm the deployed version" in page
    assert "Confirm deployed" in page and "Run this phase's validations now" in page


def test_a_viewer_sees_gates_but_no_forms(client, make_user, plan):
    client.force_login(make_user("viewer"))
    page = client.get(reverse("plan-detail", args=[plan.pk])).content.decode()
    assert "Schedule and gates" in page
    assert "Save window" not in page and "Approve phase" not in page and "Confirm deployed" not in page


def test_confirming_a_deployment_from_the_page(client, manager, plan):
    phase = plan.phases.get()
    Phase.objects.filter(pk=phase.pk).update(needs_deploy=True)
    client.post(reverse("phase-confirm-deploy", args=[phase.pk]), {"version": "v42"})
    phase.refresh_from_db()
    assert phase.deployed_version == "v42" and phase.deploy_confirmed_by == manager


def test_the_agenda_lists_upcoming_phases_across_plans(client, make_user, plan, demo_target):
    client.force_login(make_user("viewer"))
    soon = timezone.now() + timedelta(hours=3)
    Phase.objects.filter(plan=plan).update(not_before=soon)
    other = Plan.objects.create(title="Index orders", target=demo_target)
    Phase.objects.create(plan=other, position=1, kind="expand", name="idx", not_before=soon + timedelta(days=1))
    Phase.objects.create(plan=other, position=2, kind="contract", name="unscheduled")
    response = client.get(reverse("agenda"))
    page = response.content.decode()
    assert page.index("Add email verification") < page.index("Index orders")
    assert "unscheduled" not in page and demo_target.name in page
    assert "needs approval by a release manager" in page


def test_the_agenda_shows_a_missed_window(client, make_user, plan):
    client.force_login(make_user("viewer"))
    Phase.objects.filter(plan=plan).update(
        not_after=timezone.now() - timedelta(hours=1), window_missed_at=timezone.now()
    )
    assert "missed" in client.get(reverse("agenda")).content.decode()


def test_the_plan_list_makes_the_same_queries_for_1_or_30_plans(
    client, make_user, demo_target, django_assert_max_num_queries
):
    client.force_login(make_user("viewer"))

    def add_plans(count):
        for number in range(count):
            made = Plan.objects.create(title=f"p{number}", target=demo_target)
            Phase.objects.create(plan=made, position=1, kind="expand", name="x", not_before=timezone.now())

    add_plans(1)
    with django_assert_max_num_queries(8) as one:
        client.get(reverse("plan-list"))
    add_plans(29)
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = client.get(reverse("plan-list"))
    assert response.content.decode().count("<time datetime=") == 30
