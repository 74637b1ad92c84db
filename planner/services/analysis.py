"""Safety analysis of a phase's SQL for pages and services (the analyzer itself is planner/sql/)."""

from __future__ import annotations

from planner.models import TargetDatabase

DEFAULT_PG_VERSION = 16


def pg_version_of(target: TargetDatabase | None) -> int:
    """The target's major version when a connection check has recorded it, else a modern default."""
    if target and target.server_version:
        try:
            return int(target.server_version.split(".")[0].split()[0])
        except ValueError:
            pass
    return DEFAULT_PG_VERSION


def analyze_phase_sql(sql_text: str, *, target: TargetDatabase | None = None, path: str = "phase.sql") -> dict:
    """The analyzer's JSON-contract report for one file, plus a summary for templates."""
    from planner.sql.analysis import analyze_text

    report = analyze_text(sql_text, path=path, pg_version=pg_version_of(target)).to_dict()
    findings = [finding for statement in report["statements"] for finding in statement["findings"]]
    report["summary"] = {
        "errors": sum(f["severity"] == "error" for f in findings),
        "warnings": sum(f["severity"] == "warning" for f in findings),
        "blocking": sum(bool(statement["blocking"]) for statement in report["statements"]),
        "syntax_errors": [f for f in findings if f["rule"] == "syntax-error"],
    }
    return report
