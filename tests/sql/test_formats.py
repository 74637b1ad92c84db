"""Output formats: compiler-style text, JSON contract, GitHub annotations, SARIF."""

from __future__ import annotations

import json

from planner.sql.analysis import analyze_text
from planner.sql.formats import render

SQL = "select 1;\ncreate index on users (email);\n"


def reports():
    return [analyze_text(SQL, path="db/0001.sql")]


def test_text_is_file_line_col_severity_rule_message_then_the_fix():
    out = render(reports(), "text").splitlines()
    assert out[0].startswith("db/0001.sql:2:1: error require-concurrent-index-creation: CREATE INDEX holds SHARE")
    assert out[1] == "    fix:"
    assert out[2] == "        -- migration 1 of 1: build the index without blocking writes"
    assert out[-1].startswith("1 file(s), 2 statement(s), 1 blocking: 1 error(s), 1 warning(s)")


def test_json_follows_the_contract():
    data = json.loads(render(reports(), "json"))
    (file,) = data["files"]
    assert file["path"] == "db/0001.sql"
    second = file["statements"][1]
    assert second["line"] == 2 and second["kind"] == "IndexStmt"
    assert second["locks"] == {"users": "SHARE"} and second["blocking"] is True
    assert second["blocks"] == {"users": ["INSERT/UPDATE/DELETE", "DDL"]}
    assert second["findings"][0]["rule"] == "require-concurrent-index-creation"


def test_github_annotations_escape_newlines():
    lines = render(reports(), "github").splitlines()
    assert lines[0].startswith("::error file=db/0001.sql,line=2,col=1,title=require-concurrent-index-creation::")
    assert "%0A" in lines[0]
    assert lines[1].startswith("::warning ")


def test_sarif_lists_rules_and_results():
    data = json.loads(render(reports(), "sarif"))
    run = data["runs"][0]
    assert data["version"] == "2.1.0"
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == {
        "require-concurrent-index-creation",
        "require-timeout-settings",
    }
    region = run["results"][0]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 2, "startColumn": 1}
