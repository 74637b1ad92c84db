"""Splitting files into statements: positions, comments, dollar quotes, syntax errors."""

from __future__ import annotations

import pytest

from planner.sql.analysis import analyze_text
from planner.sql.source import is_no_transaction, split


def test_it_splits_with_line_and_column():
    chunks = split("select 1;\n  select 2; select 3;\n\n-- trailing\n")
    assert [(c.line, c.column, c.text) for c in chunks] == [(1, 1, "select 1"), (2, 3, "select 2"), (2, 13, "select 3")]


def test_statement_positions_skip_leading_comments():
    chunks = split("-- header\n/* block\ncomment */ create table t (id int);")
    assert (chunks[0].line, chunks[0].column) == (3, 12)
    assert chunks[0].comments == ["-- header", "/* block\ncomment */"]


def test_semicolons_inside_dollar_quotes_strings_and_atomic_bodies_do_not_split():
    sql = """
        create function f() returns int language plpgsql as $body$ begin return 1; end; $body$;
        select 'a;b', $$c;d$$, "e;f" from t;
        create function g() returns int language sql begin atomic select 1; select 2; end;
        do $$ begin perform 1; end $$;
    """
    kinds = [type(c.node).__name__ for c in split(sql)]
    assert kinds == ["CreateFunctionStmt", "SelectStmt", "CreateFunctionStmt", "DoStmt"]


def test_positions_count_characters_not_bytes():
    chunks = split("select 'ééé'; select 'ü';")
    assert (chunks[1].line, chunks[1].column) == (1, 15)


def test_a_syntax_error_keeps_the_statements_around_it():
    chunks = split("select 1;\nalter tabel t add column c int;\nselect 2;")
    assert [c.error is None for c in chunks] == [True, False, True]
    broken = chunks[1]
    assert broken.error == 'syntax error at or near "tabel"'
    assert (broken.error_line, broken.error_column) == (2, 7)
    assert broken.text == "alter tabel t add column c int"


def test_errors_at_end_of_input_point_past_the_last_character():
    (chunk,) = split("select 1;\nalter table t add column")[1:]
    assert chunk.error == "syntax error at end of input"
    assert (chunk.error_line, chunk.error_column) == (2, 25)


def test_unterminated_literals_are_errors_not_exceptions():
    for sql in ("select 'abc", "select $$abc", "select 1; /* never closed", 'select "x'):
        assert any(c.error for c in split(sql)), sql


def test_empty_and_comment_only_files_have_no_statements():
    assert split("") == []
    assert split("-- nothing\n/* at all */\n;;") == []


def test_no_transaction_marker_must_be_the_first_line():
    assert is_no_transaction("-- no-transaction\ncreate index concurrently on t (a);")
    assert is_no_transaction("--no-transaction")
    assert not is_no_transaction("select 1;\n-- no-transaction")


def test_the_syntax_error_finding_carries_postgresqls_message_and_position():
    report = analyze_text("select 1;\nselect from where;", path="m.sql")
    statement = report.statements[1]
    assert statement.kind == "SyntaxError"
    (found,) = statement.findings
    assert found.rule == "syntax-error" and found.severity == "error"
    assert 'syntax error at or near "where"' in found.message
    assert (found.line, found.column) == (2, 13)


def test_report_dict_has_the_contract_keys():
    statement = analyze_text("create index on users (email);").to_dict()["statements"][0]
    assert {
        "line",
        "sql",
        "kind",
        "locks",
        "rewrites",
        "scans",
        "blocking",
        "blocks",
        "no_transaction",
        "estimate_seconds",
        "findings",
    } <= set(statement)
    assert statement["kind"] == "IndexStmt"
    assert statement["locks"] == {"users": "SHARE"}
    assert set(statement["findings"][0]) == {"rule", "severity", "message", "fix"}


def test_the_fast_parse_builds_the_same_trees_as_pglast():
    from pglast import parse_sql

    from planner.sql.source import fast_parse_sql
    from tests.sql.corpus.cases import CASES
    from tests.sql.test_lock_model_measured import MEASURED, SETUP

    texts = [case.setup + case.statement for case in CASES] + [SETUP] + [row[0] for row in MEASURED]
    for text in texts:
        assert fast_parse_sql(text) == parse_sql(text), text


def test_the_fast_parse_restores_validation():
    from pglast import ast

    from planner.sql.source import fast_parse_sql

    fast_parse_sql("select 1")
    with pytest.raises(ValueError, match="Bad value"):
        ast.RangeVar(relname=42)
