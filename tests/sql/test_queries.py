"""Which statements the compatibility check checks, and which pg_stat_statements entries are the application's."""

import pytest

from planner.sql.queries import QueryProblem, kind_of, missing_column_table, reads_application_tables, split_pasted


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("SELECT id FROM users WHERE id = $1", "SELECT"),
        ("WITH x AS (SELECT 1) SELECT * FROM x", "SELECT"),
        ("INSERT INTO users (email) VALUES ($1) RETURNING id", "INSERT"),
        ("UPDATE users SET name = $1", "UPDATE"),
        ("DELETE FROM users WHERE id = $1", "DELETE"),
    ],
)
def test_queries_are_checked(sql, kind):
    assert kind_of(sql) == kind


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELEC 1", "does not parse"),
        ("SET search_path = x", "VariableSet statement"),
        ("SELECT 1; SELECT 2", "holds 2 statements"),
        ("ALTER TABLE users ADD x int", "AlterTable statement"),
    ],
)
def test_other_statements_are_refused_with_the_reason(sql, message):
    with pytest.raises(QueryProblem, match=message):
        kind_of(sql)


@pytest.mark.parametrize(
    ("sql", "application"),
    [
        ("SELECT * FROM users u JOIN orders o ON o.user_id = u.id", True),
        ("SELECT * FROM pg_class", False),
        ("SELECT * FROM pg_catalog.pg_class c JOIN users u ON true", False),
        ("SELECT * FROM information_schema.tables", False),
        ("SELECT * FROM _sqlx_migrations", False),
        ("UPDATE planner_bookkeeping.backfill_runs SET x = 1", False),
        ("SELECT 1", False),
        ("WITH recent AS (SELECT * FROM orders) SELECT * FROM recent", True),
    ],
)
def test_catalog_and_bookkeeping_statements_are_not_the_applications(sql, application):
    assert reads_application_tables(sql) is application


def test_pasted_text_is_split_and_each_problem_has_its_line():
    pasted = split_pasted("SELECT id FROM users;\nSELEC oops;\nBEGIN;\nUPDATE users SET name = 'x';\n")
    assert [(p.line, p.problem is None) for p in pasted] == [(1, True), (2, False), (3, False), (4, True)]
    assert pasted[1].problem.startswith("does not parse")


@pytest.mark.parametrize(
    ("sql", "message", "expected"),
    [
        (
            "SELECT id, name FROM users WHERE id = $1",
            'column "name" does not exist',
            'column "name" does not exist (in users)',
        ),
        (
            "SELECT u.name FROM users u JOIN orders o ON true",
            "column u.name does not exist",
            "column u.name does not exist (in users)",
        ),
        (
            "SELECT name FROM users u JOIN orders o ON true",
            'column "name" does not exist',
            'column "name" does not exist',
        ),
        (
            "SELECT x FROM s.t",
            'column "x" does not exist (Perhaps …)',
            'column "x" does not exist (in s.t) (Perhaps …)',
        ),
        (
            "UPDATE users SET name = 1",
            'column "name" of relation "users" does not exist',
            'column "name" of relation "users" does not exist',
        ),
        ("SELECT 1 FROM users", 'relation "users" does not exist', 'relation "users" does not exist'),
    ],
)
def test_a_missing_column_is_placed_in_its_table_when_the_query_tells(sql, message, expected):
    assert missing_column_table(sql, message) == expected
