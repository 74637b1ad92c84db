"""The analyzer's entry point: a migration file in, one report per statement out.

`analyze_text` splits the file (source.py), runs the lock model statement by statement (model.py),
then the rules (rules/), and finally applies suppressions, the configuration and table sizes.
It never raises on bad SQL: a statement PostgreSQL would reject becomes a `syntax-error` finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from planner.sql.catalog import Catalog
from planner.sql.config import AnalyzeConfig
from planner.sql.estimate import estimate_seconds, is_tiny
from planner.sql.findings import Finding
from planner.sql.locks import Lock, blocks
from planner.sql.model import Effect, FileState, apply_statement
from planner.sql.rules import RULES, run_rules
from planner.sql.rules.constraints import finish_fk_without_index
from planner.sql.source import Chunk, is_no_transaction, split, trailing_comments
from planner.sql.suppress import file_ignores, silenced, statement_ignores

SEVERITIES = ("error", "warning", "info")


@dataclass
class StatementReport:
    line: int
    column: int
    sql: str
    kind: str
    locks: dict[str, str] = field(default_factory=dict)
    rewrites: list[str] = field(default_factory=list)
    scans: list[str] = field(default_factory=list)
    blocking: bool = False
    blocks: dict[str, list[str]] = field(default_factory=dict)
    no_transaction: bool = False
    estimate_seconds: float | None = None
    findings: list[Finding] = field(default_factory=list)
    # What a dynamic trace on a shadow copy saw (planner.sql.measured); None when not traced.
    measured: dict | None = None

    def to_dict(self) -> dict:
        data = {
            "line": self.line,
            "column": self.column,
            "sql": self.sql,
            "kind": self.kind,
            "locks": dict(self.locks),
            "rewrites": list(self.rewrites),
            "scans": list(self.scans),
            "blocking": self.blocking,
            "blocks": {k: list(v) for k, v in self.blocks.items()},
            "no_transaction": self.no_transaction,
            "estimate_seconds": self.estimate_seconds,
            "findings": [f.to_dict() for f in self.findings],
        }
        if self.measured is not None:
            data["measured"] = self.measured
        return data


@dataclass
class FileReport:
    path: str
    statements: list[StatementReport] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"path": self.path, "statements": [s.to_dict() for s in self.statements]}

    def findings(self) -> list[Finding]:
        return [f for s in self.statements for f in s.findings]

    @property
    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.findings())

    @property
    def has_syntax_errors(self) -> bool:
        return any(f.rule == "syntax-error" for f in self.findings())


@dataclass
class FileContext:
    """File-wide facts the rules read: the marker, the statements seen so far."""

    path: str
    no_transaction: bool
    pg_version: int
    config: AnalyzeConfig
    previous: list[tuple[object, StatementReport, Effect]] = field(default_factory=list)
    memo: dict = field(default_factory=dict)  # rules' own file-level memory (e.g. "already reported")


def _blocking(effect: Effect) -> bool:
    if effect.full_table_dml:
        return True
    touched = set(effect.rewrites) | set(effect.scans)
    return any(mode >= Lock.SHARE and name in touched for name, mode in effect.locks.items())


def _report_for(chunk: Chunk, effect: Effect) -> StatementReport:
    report = StatementReport(chunk.line, chunk.column, chunk.text, type(chunk.node).__name__)
    report.locks = {name: mode.label for name, mode in effect.locks.items()}
    # Partitions rewritten through their parent are reported even though the parent was the one named.
    report.rewrites = list(effect.rewrites)
    report.scans = list(effect.scans)
    report.blocking = _blocking(effect)
    for name, mode in effect.locks.items():
        blocked = blocks(mode)
        extra = effect.extra_blocks.get(name, set())
        report.blocks[name] = [op for op in ("SELECT", "INSERT/UPDATE/DELETE", "DDL") if op in blocked or op in extra]
    report.no_transaction = effect.no_transaction
    return report


def _syntax_report(chunk: Chunk) -> StatementReport:
    report = StatementReport(chunk.line, chunk.column, chunk.text, "SyntaxError")
    report.findings.append(
        Finding(
            "syntax-error",
            "error",
            f"PostgreSQL cannot parse this statement: {chunk.error} "
            f"(line {chunk.error_line}, column {chunk.error_column}); nothing in this file can run",
            line=chunk.error_line,
            column=chunk.error_column,
        )
    )
    return report


def analyze_text(
    sql_text: str,
    path: str = "m.sql",
    pg_version: int | None = None,
    catalog: Catalog | None = None,
    config: AnalyzeConfig | None = None,
) -> FileReport:
    """Analyse one migration file. Never raises on any input text."""
    config = config or AnalyzeConfig()
    pg_version = pg_version or config.pg_version or (catalog.pg_version if catalog else None) or 15
    catalog = catalog.copy() if catalog is not None else Catalog(pg_version=pg_version)
    state = FileState(catalog, pg_version=pg_version)
    chunks = split(sql_text)
    context = FileContext(path, is_no_transaction(sql_text), pg_version, config)
    all_comments = [c for chunk in chunks for c in chunk.comments] + trailing_comments(sql_text, chunks)
    ignored_in_file = file_ignores(all_comments)
    report = FileReport(path)
    ignores: dict[int, set[str]] = {}
    for chunk in chunks:
        if chunk.node is None:
            report.statements.append(_syntax_report(chunk))
            continue
        effect = apply_statement(chunk.node, state)
        statement = _report_for(chunk, effect)
        statement.estimate_seconds = estimate_seconds(effect, state.catalog)
        findings = run_rules(chunk.node, statement, effect, state, context)
        ignored = statement_ignores(chunk.comments) | ignored_in_file
        for finding in findings:
            if silenced(finding.rule, ignored):
                continue
            if not finding.line:
                finding.line, finding.column = chunk.line, chunk.column
            statement.findings.append(finding)
        context.previous.append((chunk.node, statement, effect))
        report.statements.append(statement)
        ignores[id(statement)] = ignored
    _finish(context, state, ignores)
    for statement in report.statements:
        _downgrade_tiny(statement, state.catalog, config)
    return report


def _finish(context: FileContext, state: FileState, ignores: dict[int, set[str]]) -> None:
    """Rules decided once the whole file is known (an index may come after its foreign key)."""
    if not context.config.enabled("fk-without-index", True):
        return
    for statement, finding in finish_fk_without_index(context, state.catalog):
        if not silenced(finding.rule, ignores.get(id(statement), set())):
            finding.line, finding.column = statement.line, statement.column
            statement.findings.append(finding)


def _downgrade_tiny(statement: StatementReport, catalog: Catalog, config: AnalyzeConfig) -> None:
    """With known sizes, lock-duration findings about tiny tables only inform."""
    for finding in statement.findings:
        rule = RULES.get(finding.rule)
        if rule is None or not rule.size_sensitive or finding.severity == "info" or not finding.tables:
            continue
        if all(is_tiny(catalog, name, config) for name in finding.tables):
            finding.severity = "info"
            finding.message += " (the table is tiny, so the lock is short)"
