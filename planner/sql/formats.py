"""Output formats of the analyzer: compiler-style text, the JSON contract, GitHub annotations, SARIF."""

from __future__ import annotations

import json

from planner.sql.analysis import FileReport
from planner.sql.measured import differences

FORMATS = ("text", "json", "github", "sarif")


def render(reports: list[FileReport], fmt: str) -> str:
    return {"text": text, "json": as_json, "github": github, "sarif": sarif}[fmt](reports)


def text(reports: list[FileReport]) -> str:
    """`file:line:col: severity rule: message`, the fix indented below, then a one-line summary."""
    lines = []
    counts = {"error": 0, "warning": 0, "info": 0}
    for report in reports:
        for statement in report.statements:
            for finding in statement.findings:
                counts[finding.severity] += 1
                where = f"{report.path}:{finding.line}:{finding.column}"
                lines.append(f"{where}: {finding.severity} {finding.rule}: {finding.message}")
                if finding.fix:
                    lines.append("    fix:")
                    lines.extend(f"        {fix_line}" if fix_line else "" for fix_line in finding.fix.splitlines())
            for difference in differences(statement):
                lines.append(f"{report.path}:{statement.line}:{statement.column}: trace: {difference}")
    statements = sum(len(r.statements) for r in reports)
    blocking = sum(s.blocking for r in reports for s in r.statements)
    lines.append(
        f"{len(reports)} file(s), {statements} statement(s), {blocking} blocking: "
        f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info"
    )
    return "\n".join(lines) + "\n"


def as_json(reports: list[FileReport]) -> str:
    return json.dumps({"files": [r.to_dict() for r in reports]}, indent=2) + "\n"


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def github(reports: list[FileReport]) -> str:
    """GitHub Actions workflow commands: one annotation per finding."""
    level = {"error": "error", "warning": "warning", "info": "notice"}
    lines = []
    for report in reports:
        for finding in report.findings():
            message = finding.message + (f"\n\nFix:\n{finding.fix}" if finding.fix else "")
            lines.append(
                f"::{level[finding.severity]} file={_escape_property(report.path)},line={finding.line},"
                f"col={finding.column},title={_escape_property(finding.rule)}::{_escape_data(message)}"
            )
    return "\n".join(lines) + ("\n" if lines else "")


def sarif(reports: list[FileReport]) -> str:
    """SARIF 2.1.0, for code-scanning dashboards."""
    from planner.sql.rules import all_rules

    rules = all_rules()
    level = {"error": "error", "warning": "warning", "info": "note"}
    used = sorted({f.rule for r in reports for f in r.findings()})
    results = []
    for report in reports:
        for finding in report.findings():
            result = {
                "ruleId": finding.rule,
                "level": level[finding.severity],
                "message": {"text": finding.message},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": report.path},
                            "region": {"startLine": max(finding.line, 1), "startColumn": max(finding.column, 1)},
                        }
                    }
                ],
            }
            if finding.fix:
                result["properties"] = {"fix": finding.fix}
            results.append(result)
    descriptors = [
        {
            "id": name,
            "shortDescription": {"text": rules[name].summary if name in rules else name},
            "helpUri": f"docs/rules/{name}.md",
        }
        for name in used
    ]
    document = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "planner-analyze", "rules": descriptors}}, "results": results}],
    }
    return json.dumps(document, indent=2) + "\n"
