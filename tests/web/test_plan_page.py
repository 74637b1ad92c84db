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
