"""The plan page: highlighted SQL and the safety analysis beside each phase."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_each_phase_shows_its_analysis(client, make_user, plan):
    client.force_login(make_user("viewer"))
    body = client.get(reverse("plan-detail", args=[plan.pk])).content.decode()
    assert "Safety analysis:" in body
    assert "ACCESS EXCLUSIVE" in body


def test_sql_is_highlighted_and_escaped(client, make_user, plan):
    phase = plan.phases.get()
    phase.up_sql = "ALTER TABLE users ADD COLUMN note text DEFAULT '<script>alert(1)</script>';"
    phase.save()
    client.force_login(make_user("viewer"))
    body = client.get(reverse("plan-detail", args=[plan.pk])).content.decode()
    assert '<span class="k">ALTER</span>' in body
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;" in body


def test_the_plan_page_links_its_runbook(client, make_user, plan):
    client.force_login(make_user("viewer"))
    body = client.get(reverse("plan-detail", args=[plan.pk])).content.decode()
    assert reverse("runbook", args=[plan.pk]) in body and reverse("runbook-markdown", args=[plan.pk]) in body


def test_an_unreachable_target_is_remembered_for_a_while(client, make_user, plan):
    """Otherwise every render of the page would wait for the target's connect timeout again."""
    from planner.services import analysis

    plan.target.port = 1  # nothing listens there
    plan.target.save()
    analysis._catalogs.pop(plan.target.pk, None)
    client.force_login(make_user("viewer"))
    assert client.get(reverse("plan-detail", args=[plan.pk])).status_code == 200
    assert plan.target.pk in analysis._catalogs
