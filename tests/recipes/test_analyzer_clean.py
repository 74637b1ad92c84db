"""Every statement every recipe generates passes our analyzer with no error-level finding."""

from __future__ import annotations

import pytest

from planner import recipes
from planner.pg.introspect import TargetSchema
from planner.recipes.checks import errors
from planner.sql.catalog import Catalog

SCHEMA_SQL = """
CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, name text, verified_at timestamptz, bio text);
CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint NOT NULL, note text, amount numeric(10, 2));
CREATE TABLE "Billing Events" ("Id" bigint PRIMARY KEY, "Kind" text);
CREATE TABLE tenants_users (id uuid PRIMARY KEY, tenant_id bigint, email text);
CREATE TABLE profiles (id bigint PRIMARY KEY, user_metadata jsonb, "Settings Doc" json NOT NULL);
CREATE TABLE "Profile Parts" ("Org" int, "Key" text, "Doc" jsonb, PRIMARY KEY ("Org", "Key"));
CREATE TABLE accounts (id bigint PRIMARY KEY, deleted_at timestamptz, is_deleted boolean NOT NULL DEFAULT false);
CREATE TABLE "Soft Rows" ("Key A" int, "Key B" text, "Gone At" timestamp(3), PRIMARY KEY ("Key A", "Key B"));
"""

CASES = {
    "add_column": [
        {"table": "users", "column": "flag", "type": "boolean"},
        {"table": "users", "column": "plan", "type": "text", "default": "'free'", "not_null": True},
        {
            "table": "users",
            "column": "ok",
            "type": "boolean",
            "default": "false",
            "backfill": "verified_at IS NOT NULL",
            "not_null": True,
        },
        {"table": "users", "column": "token", "type": "uuid", "default": "gen_random_uuid()", "not_null": True},
        {"table": '"Billing Events"', "column": "Seen At", "type": "timestamptz", "default": "now()"},
    ],
    "add_index": [
        {"table": "orders", "columns": "user_id"},
        {"table": "orders", "columns": "user_id, amount", "where": "amount > 0", "include": "note"},
        {"table": "users", "columns": "name, bio", "method": "fulltext", "language": "simple"},
        {"table": '"Billing Events"', "columns": "Kind", "name": "Kind Index"},
    ],
    "add_foreign_key": [
        {"table": "orders", "columns": "user_id", "ref_table": "users"},
        {"table": "orders", "columns": "user_id", "ref_table": "users", "on_delete": "cascade", "index": False},
    ],
    "add_unique": [{"table": "users", "columns": "email"}, {"table": "orders", "columns": "user_id, note"}],
    "rename_column": [
        {"table": "users", "column": "email", "new_name": "email_address"},
        {"table": "users", "column": "name", "new_name": "full_name"},
        {"table": '"Billing Events"', "column": "Kind", "new_name": "Event Kind"},
    ],
    "change_column_type": [
        {"table": "users", "column": "email", "type": "varchar(320)"},
        {"table": "orders", "column": "amount", "type": "numeric(14,2)"},
        {"table": "orders", "column": "user_id", "type": "numeric"},
        {"table": '"Billing Events"', "column": "Kind", "type": "varchar(50)"},
    ],
    "change_primary_key": [
        {"table": "tenants_users", "columns": "tenant_id, id"},
        {"table": "tenants_users", "columns": "tenant_id, email", "keep_old_unique": False, "name": "tu_key"},
        {"table": "orders", "columns": "user_id, id"},
        {"table": '"Billing Events"', "columns": "Kind, Id"},
    ],
    "drop_column": [
        {"table": "users", "column": "bio"},
        {"table": "users", "column": "email"},
        {"table": "orders", "column": "note", "canary": False},
        {"table": '"Billing Events"', "column": "Kind"},
    ],
    "drop_table": [{"table": "orders"}, {"table": '"Billing Events"'}],
    "split_json_column": [
        {"table": "profiles", "column": "user_metadata", "new_table": "profile_metadata"},
        {"table": "profiles", "column": "Settings Doc", "new_table": '"Profile Settings"', "new_column": "doc"},
        {"table": '"Profile Parts"', "column": "Doc", "new_table": '"Part Docs"'},
    ],
    "soft_delete_to_events": [
        {"table": "accounts", "column": "deleted_at"},
        {"table": "accounts", "column": "is_deleted", "events_table": "account_history", "view": "live_accounts"},
        {"table": '"Soft Rows"', "column": "Gone At"},
    ],
    "free_form": [
        {
            "title": "t",
            "phases": [
                {
                    "kind": "expand",
                    "name": "x",
                    "up_sql": "ALTER TABLE users ADD COLUMN x int;",
                    "down_sql": "ALTER TABLE users DROP COLUMN x;",
                }
            ],
        },
    ],
}


def big_schema() -> TargetSchema:
    """Sizes matter to the analyzer (tiny tables downgrade findings): make every table big."""
    catalog = Catalog.from_sql(SCHEMA_SQL, pg_version=15)
    for table in catalog.tables.values():
        table.rows, table.bytes, table.index_bytes = 50_000_000, 20 * 2**30, 5 * 2**30
    return TargetSchema(catalog=catalog)


def test_every_recipe_has_cases():
    assert set(CASES) == set(recipes.RECIPES)


@pytest.mark.parametrize(
    ("name", "params"), [(name, p) for name, cases in CASES.items() for p in cases], ids=lambda v: str(v)[:40]
)
def test_generated_sql_has_no_error_finding(name, params):
    schema = big_schema()
    draft = recipes.get(name).draft(schema, params)
    assert draft.phases
    assert errors(draft.phases, schema.catalog) == []


@pytest.mark.parametrize("name", [n for n in CASES if n != "free_form"])
def test_phases_come_with_runbook_and_validations(name):
    draft = recipes.get(name).draft(big_schema(), CASES[name][0])
    for phase in draft.phases:
        assert phase.down_sql.strip(), phase.name
        assert {"rollback", "testing", "estimated_duration", "estimated_seconds"} <= set(phase.runbook)
        assert phase.validations, phase.name
        if phase.kind == "backfill":
            assert phase.backfill_spec["table"] and phase.backfill_spec["set"]


def test_statements_with_concurrently_are_alone_and_marked():
    schema = big_schema()
    for name, cases in CASES.items():
        for params in cases:
            for phase in recipes.get(name).draft(schema, params).phases:
                for text in (phase.up_sql, phase.down_sql):
                    if "CONCURRENTLY" in text:
                        assert text.startswith("-- no-transaction\n") and text.count(";") == 1, text
