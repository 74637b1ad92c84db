"""The audit log page: every role may read it; filters by plan, user and action."""

import pytest
from django.urls import reverse

from planner.services import audit

pytestmark = pytest.mark.django_db


@pytest.fixture
def events(make_user, plan):
    alice, bob = make_user("release manager", "alice"), make_user("on-call engineer", "bob")
    audit.record(alice, "plan.scheduled", plan, reason="window agreed")
    audit.record(bob, "run.pause_requested", plan, reason="incident")
    return alice, bob


def test_it_lists_events_newest_first(client, make_user, events):
    client.force_login(make_user("viewer"))
    body = client.get(reverse("audit-log")).content.decode().split('id="audit-rows"')[1]
    assert body.index("run.pause_requested") < body.index("plan.scheduled")
    assert "reason: incident" in body


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ({"user": "alice"}, "plan.scheduled", "run.pause_requested"),
        ({"action": "run."}, "run.pause_requested", "plan.scheduled"),
    ],
)
def test_it_filters(client, make_user, events, query, shown, hidden):
    client.force_login(make_user("viewer"))
    body = client.get(reverse("audit-log"), query, headers={"HX-Request": "true"}).content.decode()
    assert shown in body and hidden not in body


def test_it_filters_by_plan(client, make_user, events, plan):
    client.force_login(make_user("viewer"))
    assert "plan.scheduled" in client.get(reverse("audit-log"), {"plan": plan.pk}).content.decode()
    assert "No events match" in client.get(reverse("audit-log"), {"plan": plan.pk + 999}).content.decode()


def test_it_is_forbidden_without_a_role(client, make_user, events):
    client.force_login(make_user(None))
    assert client.get(reverse("audit-log")).status_code == 403
