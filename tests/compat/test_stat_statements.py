"""pg_stat_statements as a query source, on an embedded PostgreSQL that preloads it (as `up`'s does)."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from planner.embedded import EmbeddedPostgres
from planner.models import AppQuery, TargetDatabase
from planner.pg.stat_statements import StatStatementsUnavailable, top_statements
from planner.services import compat

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def preloading_server(tmp_path_factory):
    """A server of its own: the shared test server may have been started before the option existed."""
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pgss-server"))
    url = server.start()
    try:
        with psycopg.connect(url, autocommit=True) as connection:
            assert "pg_stat_statements" in connection.execute("SHOW shared_preload_libraries").fetchone()[0]
        yield url
    finally:
        server.stop()


@pytest.fixture
def app_database(preloading_server):
    name = f"app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(preloading_server, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = make_conninfo(preloading_server, dbname=name)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, name text)")
    return dsn


def run_application(dsn: str) -> None:
    """What the application does all day: statements pg_stat_statements normalises and counts."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        for user in range(1, 31):
            connection.execute("INSERT INTO users (id, email, name) VALUES (%s, %s, %s)", [user, f"u{user}@x", "n"])
        for user in range(1, 21):
            connection.execute("SELECT id, email, name FROM users WHERE id = %s", [user]).fetchall()
        for user in range(1, 11):
            connection.execute("UPDATE users SET name = %s WHERE id = %s", ["m", user])
        connection.execute("SELECT relname FROM pg_class LIMIT 1").fetchall()  # not the application's
        connection.execute("SET application_name = 'app'")


def target_for(dsn: str) -> TargetDatabase:
    params = conninfo_to_dict(dsn)
    return TargetDatabase.objects.create(
        name=f"t-{uuid.uuid4().hex[:6]}",
        host=params["host"],
        port=int(params["port"]),
        dbname=params["dbname"],
        username=params.get("user", "postgres"),
        sslmode="disable",
    )


def test_missing_extension_is_a_clear_error(app_database):
    with pytest.raises(StatStatementsUnavailable, match="not installed in database app_.*CREATE EXTENSION"):
        top_statements(app_database)


def test_the_most_called_application_statements_become_a_versions_queries(app_database, make_user):
    with psycopg.connect(app_database, autocommit=True) as connection:
        connection.execute("CREATE EXTENSION pg_stat_statements")
        connection.execute("SELECT pg_stat_statements_reset()")
    run_application(app_database)
    statements = top_statements(app_database, limit=20)
    assert statements[0].calls == 30 and "INSERT INTO users" in statements[0].sql and "$1" in statements[0].sql

    manager = make_user("release manager")
    version = compat.add_version(manager, target_for(app_database), "app-v1")
    summary = compat.import_stat_statements(manager, version, limit=20)
    queries = list(version.queries.order_by("origin"))
    texts = sorted(q.sql.split()[0] for q in queries)
    assert texts == ["INSERT", "SELECT", "UPDATE"], [q.sql for q in queries]
    assert summary.added == 3 and all(q.source == AppQuery.Source.PG_STAT_STATEMENTS for q in queries)
    assert all("calls" in q.origin for q in queries)

    # Imported again: the same statements are recognised, nothing doubles.
    again = compat.import_stat_statements(manager, version, limit=20)
    assert (again.added, again.unchanged) == (0, 3)


def test_recorded_statements_are_checked_against_a_plan(app_database, make_user):
    from planner.models import Phase, Plan

    with psycopg.connect(app_database, autocommit=True) as connection:
        connection.execute("CREATE EXTENSION pg_stat_statements")
        connection.execute("SELECT pg_stat_statements_reset()")
    run_application(app_database)
    manager = make_user("release manager")
    target = target_for(app_database)
    compat.import_stat_statements(manager, compat.add_version(manager, target, "app-v1"))
    plan = Plan.objects.create(title="rename in place", target=target, owner=manager)
    Phase.objects.create(
        plan=plan,
        position=1,
        kind="custom",
        name="rename",
        up_sql="ALTER TABLE users RENAME COLUMN name TO full_name;",
        down_sql="ALTER TABLE users RENAME COLUMN full_name TO name;",
    )
    report = compat.check_plan(manager, plan)
    (row,) = compat.matrix_of(compat.report_data(report))
    before, after = row["cells"]
    assert before["state"] == "ok" and before["ok"] == 3
    assert after["state"] == "broken" and len(after["broken"]) == 3
    assert {q["reasons"][0] for q in after["broken"]} == {
        'column "name" does not exist (in users)',
        'column "name" of relation "users" does not exist',
    }
