"""Reading a live target into a Catalog the analyzer and the recipes use."""

from __future__ import annotations

import psycopg

from planner.pg.introspect import introspect


def test_tables_columns_constraints_indexes_and_sizes(shop):
    with psycopg.connect(shop, autocommit=True) as connection:
        connection.execute("ALTER TABLE orders ADD CONSTRAINT amount_nn CHECK (amount IS NOT NULL) NOT VALID")
        connection.execute("CREATE UNIQUE INDEX users_email_idx ON users (lower(email))")
    schema = introspect(shop)
    users, orders = schema.catalog.tables["users"], schema.catalog.tables["orders"]
    assert users.columns["email"].type == "text" and users.columns["email"].not_null
    assert orders.columns["amount"].type == "numeric(10,2)"
    assert users.rows == 2000 and users.bytes > 0 and users.index_bytes > 0
    primary = [c for c in users.constraints.values() if c.kind == "p"][0]
    assert primary.columns == ("id",)
    check = orders.constraints["amount_nn"]
    assert check.kind == "c" and not check.validated and check.not_null_column == "amount"
    assert (
        schema.catalog.indexes["users_email_idx"].columns == ("",) and schema.catalog.indexes["users_email_idx"].unique
    )
    assert schema.defaults[("orders", "amount")] == "0"
    assert schema.catalog.pg_version >= 11


def test_casts_are_asked_of_the_server(shop):
    schema = introspect(shop)
    assert schema.cast_error("integer", "bigint") is None
    assert "cannot cast type uuid to bigint" in schema.cast_error("uuid", "bigint")


def test_what_depends_on_a_column_and_special_columns(shop):
    with psycopg.connect(shop, autocommit=True) as connection:
        connection.execute("CREATE INDEX users_lower_email_idx ON users (lower(email))")
        connection.execute("CREATE VIEW user_names AS SELECT id, name FROM users")
        connection.execute("ALTER TABLE orders ADD COLUMN total numeric GENERATED ALWAYS AS (amount * 2) STORED")
        connection.execute(
            "CREATE FUNCTION public.noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$"
        )
    schema = introspect(shop)
    assert "index users_lower_email_idx" in schema.column_dependents[("users", "email")]
    assert any("user_names" in d for d in schema.column_dependents[("users", "name")])
    assert ("users", "bio") not in schema.column_dependents  # nothing uses it; NOT NULL constraints never count
    assert ("users", "verified_at") not in schema.column_dependents
    assert schema.column_kinds[("users", "id")] == "identity"
    assert schema.column_kinds[("orders", "total")] == "generated"
    assert "public.noop" in schema.functions
