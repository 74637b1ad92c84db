"""New plan from a recipe: the generated form, errors naming the field, nothing created on error."""

import psycopg
import pytest
from django.urls import reverse

from planner.models import AuditEvent, Plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(demo_target, target_dsn):
    with psycopg.connect(target_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL)")
    return demo_target


def test_the_page_lists_recipes_and_generates_a_form(client, make_user, shop):
    client.force_login(make_user("release manager"))
    body = client.get(reverse("plan-new"), {"recipe": "add_column"}).content.decode()
    assert "Add an index without blocking writes" in body
    assert 'name="column"' in body and 'name="not_null"' in body
    assert shop.name in body


def test_a_release_manager_creates_a_plan_from_a_recipe(client, make_user, shop):
    client.force_login(make_user("release manager"))
    response = client.post(
        reverse("plan-new"),
        {
            "recipe": "add_column",
            "target": shop.pk,
            "table": "users",
            "column": "email_verified",
            "type": "boolean",
            "default": "false",
            "not_null": "true",
        },
    )
    plan = Plan.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("plan-detail", args=[plan.pk])
    assert plan.recipe == "add_column"
    assert [phase.kind for phase in plan.phases.all()][0] == "expand"
    assert AuditEvent.objects.filter(action="plan.drafted_from_recipe").count() == 1


def test_an_unknown_column_names_the_field_and_creates_nothing(client, make_user, shop):
    client.force_login(make_user("release manager"))
    response = client.post(
        reverse("plan-new"),
        {"recipe": "add_index", "target": shop.pk, "table": "users", "columns": "no_such_column"},
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "columns:" in body and "no_such_column" in body
    assert 'value="no_such_column"' in body  # what was typed stays in the form
    assert not Plan.objects.exists()


def test_a_missing_target_is_an_error(client, make_user, shop):
    client.force_login(make_user("release manager"))
    response = client.post(reverse("plan-new"), {"recipe": "add_unique", "table": "users", "columns": "email"})
    assert response.status_code == 400
    assert "target: choose the target database" in response.content.decode()
    assert not Plan.objects.exists()


@pytest.mark.parametrize("role", ["viewer", "on-call engineer"])
def test_only_release_managers_create_plans(client, make_user, shop, role):
    client.force_login(make_user(role))
    assert client.get(reverse("plan-new")).status_code == 403
    response = client.post(
        reverse("plan-new"), {"recipe": "add_unique", "target": shop.pk, "table": "users", "columns": "email"}
    )
    assert response.status_code == 403
    assert not Plan.objects.exists()


def test_every_structured_recipe_has_a_form(client, make_user, shop):
    from planner.views.recipes import FORM_RECIPES

    client.force_login(make_user("release manager"))
    for name in FORM_RECIPES:
        body = client.get(reverse("plan-new"), {"recipe": name}).content.decode()
        assert 'name="table"' in body, name
