"""Property tests: no input text crashes the analyzer; unparseable SQL yields a positioned finding."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pglast import parse_sql
from pglast.parser import ParseError

from planner.sql.analysis import analyze_text

FRAGMENTS = [
    "ALTER TABLE t ",
    "ADD COLUMN c int ",
    "DEFAULT now() ",
    "CREATE INDEX ",
    "CONCURRENTLY ",
    "ON t (c)",
    "DROP ",
    "TABLE ",
    "SET NOT NULL",
    "$$",
    "'",
    '"',
    ";",
    "--",
    "/*",
    "*/",
    "\n",
    "(",
    ")",
    "é",
    "\x00",
    "REFERENCES u (id) ",
    "NOT VALID ",
    "VALIDATE CONSTRAINT c",
    "TYPE varchar(10) USING c::text",
    "-- planner-ignore ",
    "-- no-transaction\n",
]

sql_like = st.lists(st.sampled_from(FRAGMENTS), max_size=25).map("".join)


def _check(text: str) -> None:
    report = analyze_text(text, path="p.sql")
    data = report.to_dict()
    assert data["path"] == "p.sql"
    for statement in report.statements:
        for finding in statement.findings:
            assert finding.rule != "analyzer-error", finding.message
            assert finding.severity in ("error", "warning", "info")
            assert finding.line >= 1 and finding.column >= 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_no_text_crashes_the_analyzer(text):
    _check(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sql_like)
def test_no_sql_like_text_crashes_the_analyzer(text):
    _check(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sql_like)
def test_unparseable_text_gives_postgresqls_message(text):
    try:
        parse_sql(text.replace("\x00", " "))
        return
    except ParseError as error:
        message = error.args[0]
    report = analyze_text(text)
    syntax = [f for f in report.findings() if f.rule == "syntax-error"]
    assert syntax, text
    assert any(message in f.message for f in syntax)
    assert report.has_syntax_errors
