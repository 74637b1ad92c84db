"""Bad input: a clear error naming the field, and no Plan row."""

from __future__ import annotations

import psycopg
import pytest
from django.core.exceptions import PermissionDenied

from planner.models import Plan
from planner.recipes import RecipeError
from planner.services.recipes import create_plan_from_recipe

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("recipe", "params", "field", "words"),
    [
        ("add_column", {"table": "nope", "column": "c", "type": "int"}, "table", "'nope' does not exist"),
        ("add_column", {"table": "users", "column": "email", "type": "int"}, "column", "already exists"),
        ("add_column", {"table": "users", "column": "c", "type": "no_such_type"}, "type", "does not exist"),
        ("add_column", {"table": "users", "column": "c", "type": "int; DROP TABLE users"}, "type", ""),
        ("add_column", {"table": "users", "column": "c", "type": "int", "not_null": True}, "default", "required"),
        (
            "add_column",
            {"table": "users", "column": "c", "type": "int", "default": "1); DROP TABLE users; --"},
            "default",
            "",
        ),
        ("add_index", {"table": "orders", "columns": "user_id, missing"}, "columns", "'missing' does not exist"),
        ("add_index", {"table": "orders", "columns": "amount", "method": "fulltext"}, "columns", "not text"),
        (
            "add_foreign_key",
            {"table": "orders", "columns": "note", "ref_table": "users", "ref_columns": "name"},
            "ref_columns",
            "no unique index",
        ),
        (
            "add_foreign_key",
            {"table": "users", "columns": "external_id", "ref_table": "orders"},
            "columns",
            "cannot cast",
        ),
        (
            "add_foreign_key",
            {"table": "orders", "columns": "user_id", "ref_table": "userz"},
            "ref_table",
            "does not exist",
        ),
        ("add_unique", {"table": "users", "columns": "id"}, "columns", "already unique"),
        ("add_index", {"table": "orders", "columns": "user_id", "colour": "red"}, "colour", "not a parameter"),
        ("rename_column", {"table": "users", "column": "nope", "new_name": "x"}, "column", "'nope' does not exist"),
        ("rename_column", {"table": "users", "column": "email", "new_name": "name"}, "new_name", "already exists"),
        ("rename_column", {"table": "users", "column": "id", "new_name": "user_id"}, "column", "identity column"),
        ("rename_column", {"table": "userz", "column": "email", "new_name": "x"}, "table", "does not exist"),
        ("change_column_type", {"table": "users", "column": "external_id", "type": "bigint"}, "type", "cannot cast"),
        ("change_column_type", {"table": "users", "column": "id", "type": "numeric"}, "column", "primary key"),
        ("change_column_type", {"table": "users", "column": "email", "type": "text"}, "type", "already is text"),
        ("change_column_type", {"table": "users", "column": "bio", "type": "no_such_type"}, "type", "does not exist"),
        ("drop_column", {"table": "orders", "column": "id"}, "column", "identity column"),
        ("drop_column", {"table": "orders", "column": "nope"}, "column", "does not exist"),
        ("drop_column", {"table": "users", "column": "bio", "canary": "maybe"}, "canary", "true or false"),
        ("drop_table", {"table": "userz"}, "table", "does not exist"),
        ("drop_table", {"table": "users; DROP TABLE orders"}, "table", "not a table name"),
        (
            "change_column_type",
            {"table": "orders", "column": "note", "type": "int); DROP TABLE users; --"},
            "type",
            "",
        ),
        (
            "free_form",
            {"title": "t", "phases": [{"kind": "expand", "name": "x", "up_sql": "DROP TABLE orders;"}]},
            "phases[1].up_sql",
            "ban-drop-table",
        ),
    ],
)
def test_a_clear_error_names_the_field_and_nothing_is_created(refused, recipe, params, field, words):
    refused(recipe, params, field, words)


def test_an_unknown_recipe_is_named(make_user, demo_target):
    with pytest.raises(RecipeError, match="recipe: unknown recipe 'teleport'"):
        create_plan_from_recipe(make_user("release manager"), target=demo_target, recipe="teleport", params={})


def test_a_viewer_cannot_create_plans(make_user, demo_target, shop):
    with pytest.raises(PermissionDenied):
        create_plan_from_recipe(
            make_user("viewer"), target=demo_target, recipe="add_index", params={"table": "orders", "columns": "note"}
        )
    assert Plan.objects.count() == 0


def test_a_plan_is_stored_with_its_recipe_and_audited(make_user, demo_target, shop):
    from planner.models import AuditEvent

    params = {"table": "orders", "columns": "note"}
    plan = create_plan_from_recipe(make_user("release manager"), target=demo_target, recipe="add_index", params=params)
    assert plan.recipe == "add_index" and plan.recipe_params == params
    assert plan.phases.count() == 1
    assert AuditEvent.objects.filter(plan=plan, action="plan.drafted_from_recipe").exists()


@pytest.mark.parametrize(
    ("recipe", "params", "words"),
    [
        ("rename_column", {"table": "orders", "column": "note", "new_name": "memo"}, "index orders_note_idx"),
        ("change_column_type", {"table": "orders", "column": "note", "type": "varchar(100)"}, "orders_note_idx"),
        ("drop_column", {"table": "users", "column": "name"}, "view user_names"),
        ("drop_column", {"table": "orders", "column": "user_id"}, "orders_user_id_fkey"),
        ("drop_table", {"table": "users"}, "referenced by foreign key orders_user_id_fkey"),
    ],
)
def test_what_depends_on_a_column_or_table_is_named(make_user, demo_target, shop, recipe, params, words):
    with psycopg.connect(shop, autocommit=True) as connection:
        connection.execute("CREATE INDEX orders_note_idx ON orders (note)")
        connection.execute("CREATE VIEW user_names AS SELECT id, name FROM users")
        connection.execute(
            "ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users"
        )
    with pytest.raises(RecipeError) as caught:
        create_plan_from_recipe(make_user("release manager"), target=demo_target, recipe=recipe, params=params)
    assert caught.value.field in ("column", "table")
    assert words in str(caught.value)
    assert Plan.objects.count() == 0
