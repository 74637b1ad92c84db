"""INSERT / UPDATE / DELETE / SELECT / LOCK: row-level work, foreign-key checks, and full scans."""

from __future__ import annotations

from pglast import ast

from planner.sql.exprs import column_refs
from planner.sql.locks import Lock
from planner.sql.model.ddl import read_sources
from planner.sql.model.state import Stmt


def _unindexed_filter(key: str, where, s: Stmt) -> bool:
    """A WHERE on a known table whose columns lead no index: PostgreSQL reads the whole table."""
    table = s.catalog.tables.get(key)
    if table is None or where is None:
        return False
    leading = {i.columns[0] for i in s.catalog.indexes_of(key) if i.columns}
    return not set(column_refs(where)) & leading


def _dml(node, s: Stmt) -> None:
    key, written, exists = s.touch_rv(node.relation, Lock.ROW_EXCLUSIVE)
    select = getattr(node, "selectStmt", None)
    if select is not None:
        whole = isinstance(select, ast.SelectStmt) and select.whereClause is None and select.fromClause
        read_sources(select, s, scan=bool(whole))
    for source in ("fromClause", "usingClause"):
        part = getattr(node, source, None)
        if part is not None:
            read_sources(part, s, scan=False)
    table = s.catalog.tables.get(key)
    if table is not None and isinstance(node, ast.InsertStmt | ast.UpdateStmt):
        targets = {t.name for t in node.targetList or ()} if isinstance(node, ast.UpdateStmt) else None
        for fk in table.foreign_keys():
            # The foreign-key check reads the referenced row FOR KEY SHARE (ROW SHARE on that table).
            if fk.ref_table and (targets is None or targets & set(fk.columns)):
                s.touch(fk.ref_table, fk.ref_table, Lock.ROW_SHARE)
    if isinstance(node, ast.DeleteStmt) or (isinstance(node, ast.UpdateStmt) and table is not None):
        _referencing_checks(node, key, s)
    if isinstance(node, ast.UpdateStmt | ast.DeleteStmt) and exists:
        if node.whereClause is None:
            s.scan(key, written)
            s.effect.full_table_dml.append(written)
        elif _unindexed_filter(key, node.whereClause, s):
            s.scan(key, written)


def _referencing_checks(node, key: str, s: Stmt) -> None:
    """Deleting (or re-keying) referenced rows makes PostgreSQL look up, and lock, referencing rows."""
    targets = {t.name for t in node.targetList or ()} if isinstance(node, ast.UpdateStmt) else None
    for other, fk in s.catalog.referencing(key):
        if targets is not None and not targets & set(fk.ref_columns or ("id",)):
            continue
        cascades = fk.on_delete in ("c", "n", "d") and targets is None
        if s.touch(other, other, Lock.ROW_EXCLUSIVE if cascades else Lock.ROW_SHARE):
            leading = {i.columns[0] for i in s.catalog.indexes_of(other) if i.columns}
            if fk.columns and fk.columns[0] not in leading:
                s.scan(other, other)  # no index on the referencing columns: each check reads the table


def _select(node: ast.SelectStmt, s: Stmt) -> None:
    for item in node.fromClause or ():
        if isinstance(item, ast.RangeVar):
            key, written, exists = s.touch_rv(item, Lock.ACCESS_SHARE)
            if exists and node.whereClause is None and node.limitCount is None:
                s.scan(key, written)
        else:
            read_sources(item, s, scan=False)


_LOCK_NUMBERS = {m.value: m for m in Lock}


def _lock(node: ast.LockStmt, s: Stmt) -> None:
    mode = _LOCK_NUMBERS.get(node.mode, Lock.ACCESS_EXCLUSIVE)
    for rv in node.relations or ():
        s.touch_rv(rv, mode)


# Statement kind (pglast node class name) -> handler.
HANDLERS = {
    "InsertStmt": _dml,
    "UpdateStmt": _dml,
    "DeleteStmt": _dml,
    "SelectStmt": _select,
    "LockStmt": _lock,
}
