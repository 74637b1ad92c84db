"""change_primary_key refuses bad input with an error naming the field, and creates no Plan row."""

from __future__ import annotations

import psycopg
import pytest

from planner.recipes import RecipeError
from planner.services.recipes import create_plan_from_recipe

pytestmark = pytest.mark.django_db

EXTRA_SQL = """
CREATE TABLE logs (id bigint, note text);
CREATE DOMAIN document AS json;
CREATE TABLE docs (id bigint PRIMARY KEY, body json, meta document, kind text);
CREATE TABLE events (id bigint, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE held (id bigint PRIMARY KEY DEFERRABLE, other bigint);
CREATE TABLE covered (id bigint, other bigint, PRIMARY KEY (id) INCLUDE (other));
ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users;
"""


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"table": "nope", "columns": "id"}, "table", "'nope' does not exist"),
        ({"table": "users; DROP TABLE orders", "columns": "id"}, "table", "not a table name"),
        ({"table": "users", "columns": "email, missing"}, "columns", "'missing' does not exist"),
        ({"table": "users", "columns": "email, email"}, "columns", "names a column twice"),
        ({"table": "logs", "columns": "id"}, "table", "has no primary key"),
        ({"table": "users", "columns": "id"}, "columns", "already is the primary key"),
        ({"table": "users", "columns": "bio"}, "columns", "3 values of (bio) occur more than once"),
        ({"table": "docs", "columns": "body, id"}, "columns", "docs.body is json"),
        ({"table": "docs", "columns": "meta, id"}, "columns", 'no default operator class for access method "btree"'),
        ({"table": "events", "columns": "at, id"}, "table", "partitioned"),
        ({"table": "held", "columns": "other, id"}, "table", "DEFERRABLE"),
        ({"table": "covered", "columns": "other, id"}, "table", "INCLUDE"),
        ({"table": "users", "columns": "email, id", "keep_old_unique": "no"}, "keep_old_unique", "orders_user_id_fkey"),
        ({"table": "users", "columns": "email, id", "keep_old_unique": "maybe"}, "keep_old_unique", "true or false"),
        ({"table": "users", "columns": "email, id", "name": "orders_pkey"}, "name", "already exists"),
        ({"table": "users", "columns": "email, id", "colour": "red"}, "colour", "not a parameter"),
    ],
)
def test_a_clear_error_names_the_field_and_nothing_is_created(refused, shop, params, field, words):
    with psycopg.connect(shop, autocommit=True) as connection:
        connection.execute(EXTRA_SQL)
    refused("change_primary_key", params, field, words)
    with psycopg.connect(shop) as connection:
        assert connection.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'users'").fetchone()[0] == 1


def test_the_column_type_recipe_points_primary_keys_here(make_user, demo_target, shop):
    with pytest.raises(RecipeError, match="primary key users_pkey.*change_primary_key"):
        create_plan_from_recipe(
            make_user("release manager"),
            target=demo_target,
            recipe="change_column_type",
            params={"table": "users", "column": "id", "type": "numeric"},
        )
