"""soft_delete_to_events refuses what it cannot do safely: a clear error naming the field, and no Plan row."""

from __future__ import annotations

import psycopg
import pytest

from planner.models import Plan
from planner.recipes import RecipeError
from planner.services.recipes import create_plan_from_recipe

pytestmark = pytest.mark.django_db

SETUP = """
ALTER TABLE users ADD COLUMN deleted_at timestamptz, ADD COLUMN archived_at timestamptz NOT NULL DEFAULT now(),
                  ADD COLUMN hidden boolean[];
ALTER TABLE orders ADD COLUMN deleted_at timestamp;
CREATE INDEX orders_live_idx ON orders (user_id) WHERE deleted_at IS NULL;
CREATE TABLE audit_log (at timestamptz, deleted_at timestamptz);
CREATE TABLE users_events (id bigint);
CREATE FUNCTION users_purge_events() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
"""


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"table": "userz", "column": "deleted_at"}, "table", "'userz' does not exist"),
        ({"table": "users", "column": "gone_at"}, "column", "'gone_at' does not exist"),
        ({"table": "users", "column": "name"}, "column", "users.name is text; a soft-delete column is a timestamp"),
        ({"table": "users", "column": "hidden"}, "column", "boolean[]"),
        ({"table": "users", "column": "archived_at"}, "column", "NOT NULL, so it cannot mark active rows"),
        ({"table": "audit_log", "column": "deleted_at"}, "table", "audit_log has no primary key"),
        ({"table": "users", "column": "deleted_at", "events_table": "users_events"}, "events_table", "exists"),
        ({"table": "users", "column": "deleted_at", "events_table": "orders"}, "events_table", "already exists"),
        ({"table": "users", "column": "deleted_at", "events_table": "x; DROP TABLE users"}, "events_table", "not a"),
        ({"table": "users", "column": "deleted_at", "events_table": "ok", "view": "orders"}, "view", "already exists"),
        ({"table": "orders", "column": "deleted_at"}, "column", "index orders_live_idx"),
        ({"table": "users", "column": "deleted_at", "events_table": "e", "soft": True}, "soft", "not a parameter"),
    ],
)
def test_a_clear_error_names_the_field_and_nothing_is_created(refused, shop, params, field, words):
    with psycopg.connect(shop, autocommit=True) as connection:
        connection.execute(SETUP)
    refused("soft_delete_to_events", params, field, words)
    with psycopg.connect(shop) as connection:
        assert connection.execute("SELECT to_regclass('users_active'), to_regclass('e')").fetchone() == (None, None)


def test_taken_trigger_function_names_are_named(make_user, demo_target, shop):
    """The default events table is free here, but a function the plan would create exists already."""
    with psycopg.connect(shop, autocommit=True) as connection:
        connection.execute(SETUP)
    params = {"table": "users", "column": "deleted_at", "events_table": "user_events"}
    with pytest.raises(RecipeError, match="users_purge_events") as caught:
        create_plan_from_recipe(
            make_user("release manager"), target=demo_target, recipe="soft_delete_to_events", params=params
        )
    assert caught.value.field == "table"
    assert Plan.objects.count() == 0
