"""Predicted vs measured: where the lock model and a dynamic trace (planner/pg/trace.py) disagree.

A measured entry is a dict {"locks", "rewrites", "scans", "traced", "held"?, "error"?}. Because a
trace runs the whole file in one transaction, a lock mode an earlier statement already holds is not
seen again: `held` lists, per table, the modes held before the statement, and a predicted mode
found there counts as agreeing. Tables are compared by catalog key (`public.` dropped).
"""

from __future__ import annotations

from planner.sql.locks import Lock


def _key(name: str) -> str:
    return name[len("public.") :] if name.startswith("public.") else name


def attach(statements, traced: list[dict]) -> None:
    """Set `measured` on each StatementReport from the traced entries (matched by line)."""
    by_line = {entry["line"]: entry for entry in traced}
    for statement in statements:
        entry = by_line.get(statement.line)
        if entry is not None:
            statement.measured = {key: value for key, value in entry.items() if key != "line"}


def differences(statement) -> list[str]:
    """Human-readable disagreements between a statement's prediction and its measurement."""
    measured = statement.measured
    if not measured:
        return []
    if not measured.get("traced", True):
        return []
    if measured.get("error"):
        return [f"failed on the shadow copy: {measured['error']}"]
    found = []
    predicted = {_key(table): mode for table, mode in statement.locks.items()}
    seen = {_key(table): mode for table, mode in measured["locks"].items()}
    held = {_key(table): modes for table, modes in measured.get("held", {}).items()}
    for table in sorted(set(predicted) | set(seen)):
        want, got = predicted.get(table), seen.get(table)
        if want == got:
            continue
        already = want in held.get(table, []) and (got is None or Lock.from_label(got) < Lock.from_label(want))
        if already:
            continue
        found.append(f"lock on {table}: measured {got or 'none'}, predicted {want or 'none'}")
    for what in ("rewrites", "scans"):
        want = {_key(t) for t in getattr(statement, what)}
        got = {_key(t) for t in measured[what]}
        if want != got:
            found.append(
                f"{what}: measured {', '.join(sorted(got)) or 'none'}, predicted {', '.join(sorted(want)) or 'none'}"
            )
    return found
