"""The runbook page and its Markdown export."""

import psycopg
import pytest
from django.urls import reverse

from planner.services.recipes import create_plan_from_recipe

pytestmark = pytest.mark.django_db


@pytest.fixture
def recipe_plan(demo_target, target_dsn, make_user):
    with psycopg.connect(target_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id bigint PRIMARY KEY, email text)")
    return create_plan_from_recipe(
        make_user("release manager"),
        target=demo_target,
        recipe="add_column",
        params={
            "table": "users",
            "column": "verified",
            "type": "boolean",
            "backfill": "email IS NOT NULL",
            "default": "false",
            "not_null": "true",
        },
    )


def test_the_runbook_page_has_every_part(client, make_user, recipe_plan):
    client.force_login(make_user("viewer"))
    body = client.get(reverse("runbook", args=[recipe_plan.pk])).content.decode()
    for part in (
        "Up SQL",
        "Safety analysis",
        "Validation queries",
        "Rollback",
        "Testing checklist",
        "ACCESS EXCLUSIVE",
    ):
        assert part in body, part


def test_the_markdown_export_is_a_download(client, make_user, recipe_plan):
    client.force_login(make_user("viewer"))
    response = client.get(reverse("runbook-markdown", args=[recipe_plan.pk]))
    assert response["Content-Type"].startswith("text/markdown")
    assert response["Content-Disposition"].startswith('attachment; filename="runbook-')
    text = response.content.decode()
    assert text.startswith(f"# Runbook: {recipe_plan.title}")
    assert "```sql\nALTER TABLE" in text
    assert "| line | statement | locks | blocking | estimate |" in text
    assert "- [ ] " in text
    assert "&lt;" not in text and "&#x27;" not in text  # Markdown, not HTML-escaped


def test_the_runbook_needs_a_role(client, make_user, recipe_plan):
    client.force_login(make_user(None))
    assert client.get(reverse("runbook", args=[recipe_plan.pk])).status_code == 403
    assert client.get(reverse("runbook-markdown", args=[recipe_plan.pk])).status_code == 403
