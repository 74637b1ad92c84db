"""The lock model: what one statement locks, rewrites and scans, given the schema and what came before.

`apply_statement` computes an `Effect` from the state *before* the statement and then updates the
state (catalog, tables created in this file, settings), so later statements see earlier ones: a
CHECK (col IS NOT NULL) validated earlier lets SET NOT NULL skip its scan, and a table created
earlier in the file is new and empty. Checked against PostgreSQL 15 and 18 (pg_locks, relfilenode,
pg_stat_xact_user_tables): see tests/sql/test_lock_model_measured.py and the corpus.
"""

from __future__ import annotations

from planner.sql.model import alter_table, ddl, dml, other
from planner.sql.model.state import Effect, FileState, Reason, Stmt, names

__all__ = ["Effect", "FileState", "Reason", "apply_statement", "names"]

_HANDLERS = {**ddl.HANDLERS, **alter_table.HANDLERS, **dml.HANDLERS, **other.HANDLERS}


def apply_statement(node, state: FileState) -> Effect:
    """Effect of one parsed statement; updates `state` to the schema after it."""
    effect = Effect()
    handler = _HANDLERS.get(type(node).__name__)
    if handler is not None:
        handler(node, Stmt(state, effect))
    return effect
