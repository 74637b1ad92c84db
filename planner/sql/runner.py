"""Run the analyzer over files for a command line: read inputs, analyse, pick the exit code.

Exit codes: 0 no error-level finding, 1 error-level findings, 2 bad input (unreadable file,
unparseable SQL, bad configuration). Kept apart from the Django command so it is testable alone.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from planner.sql.analysis import FileReport, analyze_text
from planner.sql.catalog import Catalog
from planner.sql.config import AnalyzeConfig
from planner.sql.formats import render
from planner.sql.measured import attach

OK, FINDINGS, BAD_INPUT = 0, 1, 2


@dataclass
class Outcome:
    code: int
    output: str
    problems: list[str] = field(default_factory=list)  # one line each, for stderr


def _read(path: str, stdin) -> str:
    if path == "-":
        return (stdin or sys.stdin).read()
    return Path(path).read_text(encoding="utf-8")


def run(
    paths: list[str],
    *,
    fmt: str = "text",
    pg_version: int | None = None,
    config: AnalyzeConfig | None = None,
    catalog: Catalog | None = None,
    stdin=None,
    tracer: Callable[[str], list[dict]] | None = None,
) -> Outcome:
    """`tracer(sql_text)`, when given, returns measured entries ({"line", "locks", …}) of a dynamic
    trace; they are attached to the statements of each file that parses (planner.sql.measured)."""
    config = config or AnalyzeConfig()
    reports: list[FileReport] = []
    problems: list[str] = []
    for path in paths:
        try:
            sql_text = _read(path, stdin)
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            problems.append(f"cannot read {path}: {reason}")
            continue
        report = analyze_text(
            sql_text, path="<stdin>" if path == "-" else path, pg_version=pg_version, catalog=catalog, config=config
        )
        reports.append(report)
        if tracer is not None and not report.has_syntax_errors:
            attach(report.statements, tracer(sql_text))
        if report.has_syntax_errors:
            first = next(f for f in report.findings() if f.rule == "syntax-error")
            problems.append(f"{report.path}:{first.line}:{first.column}: SQL does not parse")
    output = render(reports, fmt)
    if problems:
        code = BAD_INPUT
    elif any(r.has_errors for r in reports):
        code = FINDINGS
    else:
        code = OK
    return Outcome(code, output, problems)
