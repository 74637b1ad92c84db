"""ALTER TABLE: the lock level of each sub-command, and which ones rewrite or scan the table.

Lock levels follow PostgreSQL's AlterTableGetLockLevel (tablecmds.c), checked on PostgreSQL 15.
"""

from __future__ import annotations

from pglast import ast
from pglast.enums import AlterTableType as AT
from pglast.enums import ConstrType, ObjectType

from planner.sql.catalog import Column, Constraint, Table, qualify
from planner.sql.exprs import column_refs, is_volatile
from planner.sql.locks import Lock
from planner.sql.model.ddl import check_default_partition, column_from_def, record_constraint
from planner.sql.model.state import Reason, Stmt, names
from planner.sql.typeinfo import TypeRef, change_rewrites, is_serial

_SUBCOMMAND_LOCKS = {
    AT.AT_SetStatistics: Lock.SHARE_UPDATE_EXCLUSIVE,
    AT.AT_SetOptions: Lock.SHARE_UPDATE_EXCLUSIVE,
    AT.AT_ResetOptions: Lock.SHARE_UPDATE_EXCLUSIVE,
    AT.AT_ClusterOn: Lock.SHARE_UPDATE_EXCLUSIVE,
    AT.AT_DropCluster: Lock.SHARE_UPDATE_EXCLUSIVE,
    AT.AT_ValidateConstraint: Lock.SHARE_UPDATE_EXCLUSIVE,
    AT.AT_DetachPartitionFinalize: Lock.SHARE_UPDATE_EXCLUSIVE,
    AT.AT_EnableTrig: Lock.SHARE_ROW_EXCLUSIVE,
    AT.AT_EnableAlwaysTrig: Lock.SHARE_ROW_EXCLUSIVE,
    AT.AT_EnableReplicaTrig: Lock.SHARE_ROW_EXCLUSIVE,
    AT.AT_EnableTrigAll: Lock.SHARE_ROW_EXCLUSIVE,
    AT.AT_EnableTrigUser: Lock.SHARE_ROW_EXCLUSIVE,
    AT.AT_DisableTrig: Lock.SHARE_ROW_EXCLUSIVE,
    AT.AT_DisableTrigAll: Lock.SHARE_ROW_EXCLUSIVE,
    AT.AT_DisableTrigUser: Lock.SHARE_ROW_EXCLUSIVE,
}
# Storage parameters that only need SHARE UPDATE EXCLUSIVE (reloptions.c lock levels).
_LIGHT_RELOPTIONS = (
    "fillfactor",
    "autovacuum_",
    "toast.",
    "parallel_workers",
    "vacuum_",
    "log_autovacuum_min_duration",
    "toast_tuple_target",
    "user_catalog_table",
)
_REWRITING_SUBCOMMANDS = {AT.AT_SetAccessMethod}


def _alter_table(node: ast.AlterTableStmt, s: Stmt) -> None:
    if node.objtype == ObjectType.OBJECT_INDEX:
        return  # ALTER INDEX: locks the index, not a table
    if node.objtype == ObjectType.OBJECT_SEQUENCE:
        return
    key, written = names(node.relation)
    for cmd in node.cmds or ():
        _subcommand(cmd, key, written, s)


def _subcommand(cmd: ast.AlterTableCmd, key: str, written: str, s: Stmt) -> None:
    t = cmd.subtype
    table = s.catalog.tables.get(key)
    mode = _SUBCOMMAND_LOCKS.get(t, Lock.ACCESS_EXCLUSIVE)
    if t in (AT.AT_SetRelOptions, AT.AT_ResetRelOptions):
        options = [d.defname if not d.defnamespace else f"{d.defnamespace}.{d.defname}" for d in cmd.def_ or ()]
        light = all(o.startswith(_LIGHT_RELOPTIONS) for o in options)
        mode = Lock.SHARE_UPDATE_EXCLUSIVE if light else Lock.ACCESS_EXCLUSIVE
    if t == AT.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
        if cmd.def_.contype == ConstrType.CONSTR_FOREIGN:
            mode = Lock.SHARE_ROW_EXCLUSIVE
    if t == AT.AT_AttachPartition:
        mode = Lock.SHARE_UPDATE_EXCLUSIVE if s.state.pg_version >= 12 else Lock.ACCESS_EXCLUSIVE
    if t == AT.AT_DetachPartition and getattr(cmd.def_, "concurrent", False):
        mode = Lock.SHARE_UPDATE_EXCLUSIVE
        s.effect.no_transaction = True
    exists = s.touch(key, written, mode)
    if exists and mode == Lock.ACCESS_EXCLUSIVE:
        s.lock_partitions(key, mode)

    if t == AT.AT_AddColumn:
        _add_column(cmd.def_, key, written, exists, s)
    elif t == AT.AT_DropColumn:
        if table is not None:
            for fk in table.foreign_keys():
                if cmd.name in fk.columns and fk.ref_table:
                    s.touch(fk.ref_table, fk.ref_table, Lock.ACCESS_EXCLUSIVE)
            table.columns.pop(cmd.name, None)
    elif t == AT.AT_AlterColumnType:
        _alter_type(cmd, key, written, exists, s)
    elif t == AT.AT_SetNotNull:
        _set_not_null(cmd.name, key, written, exists, s)
    elif t == AT.AT_DropNotNull:
        if table is not None and cmd.name in table.columns:
            table.columns[cmd.name].not_null = False
    elif t == AT.AT_AddConstraint:
        _add_constraint(cmd.def_, key, written, exists, s)
    elif t == AT.AT_ValidateConstraint:
        _validate(cmd.name, key, written, exists, s)
    elif t == AT.AT_DropConstraint:
        constraint = table.constraints.pop(cmd.name, None) if table else None
        if constraint is not None and constraint.kind == "f" and constraint.ref_table:
            s.touch(constraint.ref_table, constraint.ref_table, Lock.ACCESS_EXCLUSIVE)
        elif constraint is None and cmd.name and cmd.name.endswith("_fkey"):
            s.effect.reasons.append(Reason("unknown-fk-drop", written, detail=cmd.name))
    elif t == AT.AT_AttachPartition:
        part_key, part_written = names(cmd.def_.name)
        if s.touch(part_key, part_written, Lock.ACCESS_EXCLUSIVE) and not _bound_proven(table, part_key, s):
            s.scan(part_key, part_written)
            s.effect.reasons.append(Reason("partition-scan", part_written))
        if table is not None:
            check_default_partition(table, s)
            if getattr(cmd.def_.bound, "is_default", False):
                table.default_partition = part_key
            if part_key not in table.partitions:
                table.partitions.append(part_key)
    elif t == AT.AT_DetachPartition:
        part_key, part_written = names(cmd.def_.name)
        # Measured: the partition itself is locked ACCESS EXCLUSIVE even with CONCURRENTLY.
        s.touch(part_key, part_written, Lock.ACCESS_EXCLUSIVE)
        if table is not None and table.default_partition == part_key:
            table.default_partition = None
        if table is not None and part_key in table.partitions:
            table.partitions.remove(part_key)
    elif t in (AT.AT_SetLogged, AT.AT_SetUnLogged):
        if exists and (table is None or table.unlogged == (t == AT.AT_SetLogged)):
            s.rewrite(key, written)
            s.effect.reasons.append(Reason("rewrite", written, detail=t.name))
        if table is not None:
            table.unlogged = t == AT.AT_SetUnLogged
    elif t in _REWRITING_SUBCOMMANDS or t == AT.AT_SetTableSpace:
        if exists:
            s.rewrite(key, written)
            s.effect.reasons.append(Reason("rewrite", written, detail=t.name))


def _bound_proven(parent: Table | None, part_key: str, s: Stmt) -> bool:
    """A validated CHECK on the partition key lets ATTACH skip the scan (we trust it matches the bound)."""
    partition = s.catalog.tables.get(part_key)
    if parent is None or partition is None or not parent.partition_key:
        return False
    return any(
        c.kind == "c" and c.validated and set(parent.partition_key) <= set(c.columns)
        for c in partition.constraints.values()
    )


def _add_column(coldef: ast.ColumnDef, key: str, written: str, exists: bool, s: Stmt) -> None:
    column = column_from_def(coldef)
    table = s.catalog.tables.setdefault(key, Table(key))
    type_ref = TypeRef.from_node(coldef.typeName) if coldef.typeName else TypeRef("unknown")
    rewrite_reason = None
    if is_serial(type_ref):
        rewrite_reason = f"{type_ref.name} fills every row from a sequence"
    elif s.catalog.domains.get(type_ref.name):
        rewrite_reason = f"the domain {type_ref.name} has constraints that are checked on every row"
    for con in coldef.constraints or ():
        ct = con.contype
        if ct == ConstrType.CONSTR_DEFAULT and con.raw_expr is not None and is_volatile(con.raw_expr):
            rewrite_reason = "a volatile default is evaluated for every row"
        elif ct == ConstrType.CONSTR_IDENTITY:
            rewrite_reason = "an identity column fills every row from a sequence"
        elif ct == ConstrType.CONSTR_GENERATED:
            virtual = con.generated_kind == "v" and s.state.pg_version >= 18
            if not virtual:
                rewrite_reason = "a stored generated column is computed for every row"
        elif ct == ConstrType.CONSTR_CHECK and exists and not con.skip_validation:
            s.scan(key, written)
            s.effect.reasons.append(Reason("check-scan", written, column.name))
        elif ct in (ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_EXCLUSION) and exists:
            s.scan(key, written)
            s.effect.reasons.append(Reason("index-build", written, column.name))
        elif ct == ConstrType.CONSTR_FOREIGN and con.pktable:
            ref_key, ref_written, ref_exists = s.touch_rv(con.pktable, Lock.SHARE_ROW_EXCLUSIVE)
            if exists and _has_default(coldef):
                # Existing rows get the default, which must be found in the referenced table.
                s.scan(key, written)
                if ref_exists:
                    s.scan(ref_key, ref_written)
                s.effect.reasons.append(Reason("fk-validation", written, column.name, ref_written))
        record_constraint(s, key, con, (column.name,))
    if rewrite_reason and exists:
        s.rewrite(key, written)
        s.effect.reasons.append(Reason("column-rewrite", written, column.name, rewrite_reason))
    table.columns[column.name] = column


def _has_default(coldef: ast.ColumnDef) -> bool:
    return any(
        c.contype in (ConstrType.CONSTR_DEFAULT, ConstrType.CONSTR_IDENTITY, ConstrType.CONSTR_GENERATED)
        and not (c.contype == ConstrType.CONSTR_DEFAULT and isinstance(c.raw_expr, ast.A_Const) and c.raw_expr.isnull)
        for c in coldef.constraints or ()
    ) or is_serial(TypeRef.from_node(coldef.typeName) if coldef.typeName else TypeRef("unknown"))


def _is_identity_using(expr, column: str, new_type: TypeRef) -> bool:
    """A USING clause that changes nothing: the column itself, or cast to the new type."""
    if expr is None:
        return True
    if isinstance(expr, ast.TypeCast):
        return TypeRef.from_node(expr.typeName) == new_type and _is_identity_using(expr.arg, column, new_type)
    return isinstance(expr, ast.ColumnRef) and column_refs(expr) == [column]


def _alter_type(cmd: ast.AlterTableCmd, key: str, written: str, exists: bool, s: Stmt) -> None:
    coldef: ast.ColumnDef = cmd.def_
    new_type = TypeRef.from_node(coldef.typeName)
    table = s.catalog.tables.get(key)
    column = table.columns.get(cmd.name) if table else None
    old_type = column.type_ref if column else None
    if not _is_identity_using(coldef.raw_default, cmd.name, new_type):
        rewrites = True
    else:
        rewrites = change_rewrites(old_type, new_type, pg_version=s.state.pg_version, utc_session=s.state.utc_session)
    if rewrites and exists:
        s.rewrite(key, written)
        detail = f"{old_type} -> {new_type}" if old_type else f"unknown type -> {new_type}"
        s.effect.reasons.append(Reason("type-rewrite", written, cmd.name, detail))
    elif exists and old_type is not None and _index_rebuilt(old_type, new_type, coldef) and _indexed(key, cmd.name, s):
        # No rewrite, but the column's indexes change operator class or collation: they are rebuilt.
        s.scan(key, written)
        s.effect.reasons.append(Reason("index-rebuild", written, cmd.name, f"{old_type} -> {new_type}"))
    if exists:
        # Foreign keys on the column, at either end, are dropped and re-created: both tables are locked.
        for other, _fk in _foreign_keys_on(key, cmd.name, s):
            s.touch(other, other, Lock.ACCESS_EXCLUSIVE)
    if column is not None:
        column.type = str(new_type)
    elif table is not None:
        table.columns[cmd.name] = Column(cmd.name, str(new_type))


# Types that share their index operator class: changing between them keeps the indexes.
_SAME_OPCLASS = ({"varchar", "text"}, {"cidr", "inet"})


def _index_rebuilt(old: TypeRef, new: TypeRef, coldef: ast.ColumnDef) -> bool:
    if coldef.collClause is not None:
        return True
    if old.name == new.name:
        return False
    return not any({old.name, new.name} <= family for family in _SAME_OPCLASS)


def _indexed(key: str, column: str, s: Stmt) -> bool:
    return any(column in index.columns for index in s.catalog.indexes_of(key))


def _foreign_keys_on(key: str, column: str, s: Stmt) -> list[tuple[str, Constraint]]:
    """(other table, foreign key) for keys that use `column` of `key`, as referencing or referenced column."""
    found = []
    table = s.catalog.tables.get(key)
    for fk in table.foreign_keys() if table else []:
        if column in fk.columns and fk.ref_table and fk.ref_table != key:
            found.append((fk.ref_table, fk))
    for other, fk in s.catalog.referencing(key):
        if column in fk.ref_columns or not fk.ref_columns:
            found.append((other, fk))
    return found


def _set_not_null(column: str, key: str, written: str, exists: bool, s: Stmt) -> None:
    table = s.catalog.tables.get(key)
    col = table.columns.get(column) if table else None
    already = col is not None and col.not_null
    proven = s.state.pg_version >= 12 and table is not None and table.has_validated_not_null_check(column)
    if exists and not already and not proven:
        s.scan(key, written)
        s.effect.reasons.append(Reason("not-null-scan", written, column))
    if col is not None:
        col.not_null = True
    elif table is not None:
        table.columns[column] = Column(column, "unknown", True)


def _add_constraint(con: ast.Constraint, key: str, written: str, exists: bool, s: Stmt) -> None:
    ct = con.contype
    table = s.catalog.tables.get(key)
    if ct == ConstrType.CONSTR_FOREIGN:
        ref_key, ref_written, ref_exists = s.touch_rv(con.pktable, Lock.SHARE_ROW_EXCLUSIVE)
        if exists and not con.skip_validation:
            s.scan(key, written)
            if ref_exists:
                s.scan(ref_key, ref_written)
            s.effect.reasons.append(Reason("fk-validation", written, detail=ref_written))
    elif ct in (ConstrType.CONSTR_CHECK, ConstrType.CONSTR_NOTNULL):
        if exists and not con.skip_validation:
            s.scan(key, written)
            s.effect.reasons.append(Reason("check-scan", written, detail=con.conname or ""))
    elif ct in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_EXCLUSION):
        if exists and not con.indexname:
            s.scan(key, written)
            s.effect.reasons.append(Reason("index-build", written, detail=con.conname or ""))
        if exists and ct == ConstrType.CONSTR_PRIMARY:
            # A primary key makes its columns NOT NULL, which needs a scan unless they already are.
            cols = [k.sval for k in con.keys or () if isinstance(k, ast.String)]
            if con.indexname:
                index = s.catalog.indexes.get(qualify(None, con.indexname))
                cols = list(index.columns) if index else cols
            nullable = [c for c in cols if not (table and c in table.columns and table.columns[c].not_null)]
            if nullable or not cols:
                s.scan(key, written)
                s.effect.reasons.append(Reason("not-null-scan", written, ", ".join(nullable)))
    record_constraint(s, key, con)


def _validate(name: str, key: str, written: str, exists: bool, s: Stmt) -> None:
    table = s.catalog.tables.get(key)
    constraint = table.constraints.get(name) if table else None
    if constraint is not None and constraint.validated:
        return  # already valid: PostgreSQL does nothing
    if constraint is not None and constraint.kind == "f" and constraint.ref_table:
        if s.touch(constraint.ref_table, constraint.ref_table, Lock.ROW_SHARE):
            s.scan(constraint.ref_table, constraint.ref_table)
    if exists:
        s.scan(key, written)
    if constraint is not None:
        constraint.validated = True


# Statement kind (pglast node class name) -> handler.
HANDLERS = {
    "AlterTableStmt": _alter_table,
}
