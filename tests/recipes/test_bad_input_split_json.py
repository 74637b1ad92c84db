"""split_json_column refuses bad input with an error naming the field, and creates no Plan row."""

from __future__ import annotations

import psycopg
import pytest

from planner.models import Plan
from planner.recipes import RecipeError
from planner.services.recipes import create_plan_from_recipe

pytestmark = pytest.mark.django_db

SETUP_SQL = """
ALTER TABLE users ADD COLUMN metadata jsonb, ADD COLUMN settings jsonb DEFAULT '{}', ADD COLUMN indexed_doc jsonb;
CREATE INDEX users_indexed_doc_idx ON users USING gin (indexed_doc);
CREATE TABLE events_nopk (payload jsonb);
CREATE TABLE parted (id bigint PRIMARY KEY, doc jsonb) PARTITION BY RANGE (id);
CREATE FUNCTION taken_doc_sync() RETURNS int LANGUAGE sql AS 'SELECT 1';
"""

OK = {"table": "users", "column": "metadata", "new_table": "user_metadata"}


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({**OK, "table": "userz"}, "table", "'userz' does not exist"),
        ({**OK, "column": "nope"}, "column", "'nope' does not exist"),
        ({**OK, "column": "bio"}, "column", "is text, not json or jsonb"),
        ({**OK, "table": "events_nopk", "column": "payload"}, "table", "has no primary key"),
        ({**OK, "table": "parted", "column": "doc"}, "table", "partitioned"),
        ({**OK, "column": "settings"}, "column", "has a default"),
        ({**OK, "column": "indexed_doc"}, "column", "used by index users_indexed_doc_idx"),
        ({**OK, "new_table": "orders"}, "new_table", "'orders' already exists"),
        ({**OK, "new_table": "users_pkey"}, "new_table", "'users_pkey' already exists"),
        ({**OK, "new_table": "user_metadata; DROP TABLE users"}, "new_table", "not a table name"),
        ({**OK, "new_table": "taken", "new_column": "doc"}, "new_table", "function named 'taken_doc_sync'"),
        ({**OK, "new_column": "id"}, "new_column", "primary key column"),
        ({**OK, "new_column": "d" * 64}, "new_column", "63-byte"),
        ({"table": "users", "column": "metadata"}, "new_table", "is required"),
        ({**OK, "keys": "theme:text"}, "keys", "not a parameter"),
    ],
    ids=lambda value: str(value)[:50],
)
def test_a_clear_error_names_the_field_and_nothing_is_created(refused, shop, params, field, words):
    with psycopg.connect(shop, autocommit=True) as connection:
        connection.execute(SETUP_SQL)
    refused("split_json_column", params, field, words)
    with psycopg.connect(shop) as connection:
        assert connection.execute("SELECT to_regclass('user_metadata')").fetchone()[0] is None


def test_a_trigger_name_already_taken_is_named(make_user, demo_target, shop):
    with psycopg.connect(shop, autocommit=True) as connection:
        connection.execute(SETUP_SQL)
        connection.execute(
            "CREATE FUNCTION keep() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';"
            "CREATE TRIGGER users_metadata_sync BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION keep()"
        )
    with pytest.raises(RecipeError, match="column: table 'users' already has a trigger named 'users_metadata_sync'"):
        create_plan_from_recipe(make_user("release manager"), target=demo_target, recipe="split_json_column", params=OK)
    assert Plan.objects.count() == 0
