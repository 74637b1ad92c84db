"""The analyzer's view of a whole draft: each phase analysed against the schema the earlier ones left.

A phase alone cannot be judged: SET NOT NULL is safe only because an earlier phase validated a
CHECK (col IS NOT NULL), and a foreign key is indexed by an earlier phase's concurrent build. So the
catalog is carried forward: phase N's up SQL is analysed with phases 1..N-1 applied, and its down
SQL with phase N applied too (the state in which a rollback runs it).
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.sql.analysis import analyze_text
from planner.sql.catalog import Catalog
from planner.sql.findings import Finding
from planner.sql.model import FileState, apply_statement
from planner.sql.source import split


@dataclass(frozen=True)
class PhaseFinding:
    position: int
    direction: str  # "up" or "down"
    finding: Finding

    def __str__(self) -> str:
        f = self.finding
        return f"phase {self.position} {self.direction} SQL, line {f.line}: {f.severity} {f.rule}: {f.message}"


def advance_catalog(catalog: Catalog, sql_text: str) -> None:
    """Apply the statements to the catalog in place, as pre-existing objects (what a later phase sees)."""
    state = FileState(catalog, pg_version=catalog.pg_version or 15, record_new=False)
    for chunk in split(sql_text):
        if chunk.node is not None:
            apply_statement(chunk.node, state)


def analyze_draft(phases, catalog: Catalog) -> list[PhaseFinding]:
    """Every finding of every phase (PhaseDraft or dict with up_sql/down_sql), in plan order."""
    catalog = catalog.copy()
    found = []
    for position, phase in enumerate(phases, start=1):
        up = phase["up_sql"] if isinstance(phase, dict) else phase.up_sql
        down = phase["down_sql"] if isinstance(phase, dict) else phase.down_sql
        found += _findings(position, "up", up, catalog)
        after = catalog.copy()
        advance_catalog(after, up)
        found += _findings(position, "down", down, after)
        catalog = after
    return found


def _findings(position: int, direction: str, text: str, catalog: Catalog) -> list[PhaseFinding]:
    if not text.strip():
        return []
    report = analyze_text(text, path=f"phase-{position}-{direction}.sql", catalog=catalog)
    return [PhaseFinding(position, direction, f) for s in report.statements for f in s.findings]


def errors(phases, catalog: Catalog) -> list[PhaseFinding]:
    return [f for f in analyze_draft(phases, catalog) if f.finding.severity == "error"]
