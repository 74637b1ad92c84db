"""Dynamic trace on a schema-only shadow copy: what PostgreSQL really locks, rewrites and scans."""

from __future__ import annotations

import psycopg
import pytest

from planner.pg.calibrate import calibrate
from planner.pg.shadow import SHADOW_PREFIX, ShadowError, for_server, shadow_database
from planner.pg.trace import NOT_IN_TRANSACTION, TRANSACTION_CONTROL, trace
from planner.sql.catalog import Catalog

SCHEMA = """
CREATE TABLE users (id serial PRIMARY KEY, n integer, email text);
CREATE TABLE orders (id bigint PRIMARY KEY, user_id integer REFERENCES users (id), total numeric);
CREATE INDEX orders_user_id ON orders (user_id);
CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100;
INSERT INTO users (n, email) SELECT g, 'u' || g || '@example.com' FROM generate_series(1, 500) g;
INSERT INTO orders SELECT g, 1 + g % 500, g FROM generate_series(1, 2000) g;
ANALYZE;
"""


@pytest.fixture
def shop(target_dsn):
    with psycopg.connect(target_dsn, autocommit=True) as connection:
        connection.execute(SCHEMA)
    return target_dsn


def snapshot(dsn: str) -> dict:
    """Everything a trace could possibly change in the real database: schema and data."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        columns = connection.execute(
            """SELECT c.relname, c.relfilenode, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                WHERE n.nspname = 'public' ORDER BY 1, 3"""
        ).fetchall()
        constraints = connection.execute("SELECT conname, convalidated FROM pg_constraint ORDER BY 1").fetchall()
        data = connection.execute(
            "SELECT (SELECT md5(string_agg(u::text, ',' ORDER BY id)) FROM users u),"
            "       (SELECT md5(string_agg(o::text, ',' ORDER BY id)) FROM orders o)"
        ).fetchone()
    return {"columns": columns, "constraints": constraints, "data": data}


def shadow_databases(pg_server_url: str) -> list[str]:
    with psycopg.connect(pg_server_url, autocommit=True) as connection:
        rows = connection.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [SHADOW_PREFIX + "%"])
        return [row[0] for row in rows]


def by_line(traced):
    return {statement.line: statement for statement in traced}


def test_known_facts(shop):
    traced = by_line(
        trace(
            shop,
            "CREATE INDEX users_email ON users (email);\n"
            "ALTER TABLE users ALTER COLUMN n TYPE bigint;\n"
            "ALTER TABLE orders ADD COLUMN note text;\n",
        )
    )
    index, retype, add = traced[1], traced[2], traced[3]
    assert index.error is None and index.locks == {"users": "SHARE"}
    assert index.scans == ["users"] and index.rewrites == []
    assert retype.error is None and retype.locks == {"users": "ACCESS EXCLUSIVE"}
    assert retype.rewrites == ["users"]
    assert add.error is None and add.locks == {"orders": "ACCESS EXCLUSIVE"}
    assert add.rewrites == [] and add.scans == []


def test_locks_held_from_earlier_statements_are_reported_as_held(shop):
    traced = trace(shop, "ALTER TABLE users ADD COLUMN a text;\nALTER TABLE users ADD COLUMN b text;")
    assert traced[0].locks == {"users": "ACCESS EXCLUSIVE"}
    assert traced[1].locks == {}  # already held: PostgreSQL adds no second entry
    assert "ACCESS EXCLUSIVE" in traced[1].held["users"]
    assert traced[1].to_dict()["held"]["users"][-1] == "ACCESS EXCLUSIVE"


def test_foreign_keys_views_and_truncate(shop):
    traced = trace(
        shop,
        "ALTER TABLE orders ADD CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id);\n"
        "SELECT * FROM big_orders;\n"
        "TRUNCATE orders;\n",
    )
    fk, view, truncate = traced
    assert fk.locks == {"orders": "SHARE ROW EXCLUSIVE", "users": "SHARE ROW EXCLUSIVE"}
    assert fk.scans == ["orders"]
    assert view.locks == {"big_orders": "ACCESS SHARE"}
    assert truncate.locks == {"orders": "ACCESS EXCLUSIVE"}
    assert truncate.rewrites == [] and truncate.scans == []  # a new empty file: nothing copied or read


def test_statements_outside_a_transaction_and_failures_are_reported(shop):
    traced = trace(
        shop,
        "CREATE INDEX CONCURRENTLY users_n ON users (n);\n"
        "ALTER TABLE users ADD COLUMN email text;\n"
        "BEGIN;\n"
        "VACUUM users;\n"
        "ALTER TABLE users ADD COLUMN later text;\n",
    )
    concurrently, failing, begin, vacuum, later = traced
    assert concurrently.error == NOT_IN_TRANSACTION and not concurrently.traced
    assert vacuum.error == NOT_IN_TRANSACTION
    assert begin.error == TRANSACTION_CONTROL
    assert failing.traced and 'column "email" of relation "users" already exists' in failing.error
    assert later.error is None and later.locks == {"users": "ACCESS EXCLUSIVE"}  # the rest still runs


def test_trace_never_changes_the_real_database(shop, pg_server_url):
    before = snapshot(shop)
    trace(
        shop,
        "ALTER TABLE users ALTER COLUMN n TYPE bigint;\n"
        "UPDATE users SET email = 'x';\n"
        "DELETE FROM orders;\n"
        "ALTER TABLE orders ADD COLUMN note text NOT NULL DEFAULT 'n';\n"
        "DROP VIEW big_orders;\n"
        "DROP TABLE orders;\n"
        "CREATE TABLE extra (id int);\n",
    )
    assert snapshot(shop) == before
    assert shadow_databases(pg_server_url) == []


def test_shadow_is_dropped_when_a_statement_fails(shop, pg_server_url):
    traced = trace(shop, "SELECT 1/0;\nALTER TABLE nowhere ADD COLUMN x int;")
    assert "division by zero" in traced[0].error
    assert 'relation "nowhere" does not exist' in traced[1].error
    assert shadow_databases(pg_server_url) == []


def test_shadow_is_dropped_when_the_caller_fails(shop, pg_server_url):
    with pytest.raises(RuntimeError, match="boom"), shadow_database(shop) as shadow:
        assert shadow_databases(pg_server_url) == [psycopg.conninfo.conninfo_to_dict(shadow)["dbname"]]
        with psycopg.connect(shadow) as connection:  # an open connection does not keep it alive
            assert connection.execute("SELECT count(*) FROM users").fetchone() == (0,)  # schema only
            raise RuntimeError("boom")
    assert shadow_databases(pg_server_url) == []


def test_unreachable_target_is_a_shadow_error_without_password(shop):
    bad = psycopg.conninfo.make_conninfo(shop, password="s3cret-pw", port="1")
    with pytest.raises(ShadowError) as caught:
        trace(bad, "SELECT 1")
    assert "s3cret-pw" not in str(caught.value)


def test_unknown_settings_of_newer_dumps_are_dropped():
    dump = "SET statement_timeout = 0;\nSET transaction_timeout = 0;\nCREATE TABLE t (id int);\n"
    assert for_server(dump, {"statement_timeout"}) == "SET statement_timeout = 0;\nCREATE TABLE t (id int);\n"


def test_calibration_measures_this_server(target_dsn):
    throughput = calibrate(target_dsn, use_cache=False)
    assert throughput.error is None
    assert throughput.sample_bytes > 5 * 1024 * 1024
    assert throughput.scan_bytes_per_second > 1024 * 1024
    assert throughput.rewrite_bytes_per_second > 1024 * 1024
    assert throughput.seconds < 3
    catalog = throughput.apply(Catalog())
    assert catalog.scan_bytes_per_second == throughput.scan_bytes_per_second
    assert calibrate(target_dsn) is calibrate(target_dsn)  # cached per target for the process
