"""CREATE / DROP / RENAME and CREATE INDEX: new tables, dropped ones, and what they lock on the way."""

from __future__ import annotations

from pglast import ast
from pglast.enums import ConstrType, ObjectType

from planner.sql.catalog import Column, Constraint, Index, Table, qualify
from planner.sql.exprs import column_refs, not_null_column, walk
from planner.sql.locks import Lock
from planner.sql.model.state import Reason, Stmt, list_name, names
from planner.sql.typeinfo import TypeRef


def column_from_def(coldef: ast.ColumnDef) -> Column:
    type_ref = TypeRef.from_node(coldef.typeName) if coldef.typeName else TypeRef("unknown")
    not_null = bool(coldef.is_not_null) or any(
        c.contype in (ConstrType.CONSTR_NOTNULL, ConstrType.CONSTR_PRIMARY) for c in coldef.constraints or ()
    )
    return Column(coldef.colname, str(type_ref), not_null)


def record_constraint(s: Stmt, key: str, con: ast.Constraint, columns: tuple[str, ...] = ()) -> Constraint | None:
    table = s.catalog.tables.setdefault(key, Table(key))
    kind = {
        ConstrType.CONSTR_PRIMARY: "p",
        ConstrType.CONSTR_UNIQUE: "u",
        ConstrType.CONSTR_FOREIGN: "f",
        ConstrType.CONSTR_CHECK: "c",
        ConstrType.CONSTR_EXCLUSION: "x",
        ConstrType.CONSTR_NOTNULL: "n",
    }.get(con.contype)
    if kind is None:
        return None
    cols = tuple(k.sval for k in (con.keys or con.fk_attrs or ()) if isinstance(k, ast.String)) or columns
    if kind == "c" and con.raw_expr is not None:
        cols = tuple(dict.fromkeys(column_refs(con.raw_expr)))
    ref_key = names(con.pktable)[0] if con.pktable else None
    ref_cols = tuple(k.sval for k in con.pk_attrs or () if isinstance(k, ast.String))
    nn_col = not_null_column(con.raw_expr) if kind == "c" else (cols[0] if kind == "n" and cols else None)
    base = key.split(".")[-1]
    suffix = {"p": "pkey", "u": "key", "f": "fkey", "c": "check", "x": "excl", "n": "not_null"}[kind]
    default_name = f"{base}_pkey" if kind == "p" else f"{base}_{'_'.join(cols[:1]) or 'expr'}_{suffix}"
    name = con.conname or default_name
    on_delete = con.fk_del_action if kind == "f" and con.fk_del_action in ("a", "r", "c", "n", "d") else "a"
    constraint = Constraint(name, kind, cols, not con.skip_validation, ref_key, ref_cols, nn_col, on_delete)
    table.constraints[name] = constraint
    if kind == "p":
        for col in cols:
            if col in table.columns:
                table.columns[col].not_null = True
    if kind in ("p", "u") and not con.indexname:
        s.catalog.indexes[qualify(None, name)] = Index(name, key, cols, unique=True)
    return constraint


def _create(node: ast.CreateStmt, s: Stmt) -> None:
    key, written = names(node.relation)
    if node.if_not_exists and key in s.catalog.tables:
        return
    table = Table(key, kind="p" if node.partspec else "r", unlogged=node.relation.relpersistence == "u")
    if node.partspec:
        table.partition_key = tuple(p.name for p in node.partspec.partParams or () if getattr(p, "name", None))
    s.catalog.tables[key] = table
    if s.state.record_new:
        s.state.new_tables.add(key)
    for element in node.tableElts or ():
        if isinstance(element, ast.ColumnDef):
            table.columns[element.colname] = column_from_def(element)
            for con in element.constraints or ():
                if con.contype == ConstrType.CONSTR_FOREIGN and con.pktable:
                    s.touch_rv(con.pktable, Lock.SHARE_ROW_EXCLUSIVE)
                record_constraint(s, key, con, (element.colname,))
        elif isinstance(element, ast.Constraint):
            if element.contype == ConstrType.CONSTR_FOREIGN and element.pktable:
                s.touch_rv(element.pktable, Lock.SHARE_ROW_EXCLUSIVE)
            record_constraint(s, key, element)
        elif isinstance(element, ast.TableLikeClause):
            s.touch_rv(element.relation, Lock.ACCESS_SHARE)
    for parent in node.inhRelations or ():
        parent_key, _written, _exists = s.touch_rv(
            parent, Lock.ACCESS_EXCLUSIVE if node.partbound else Lock.SHARE_UPDATE_EXCLUSIVE
        )
        parent_table = s.catalog.tables.get(parent_key)
        if node.partbound and parent_table is not None:
            check_default_partition(parent_table, s)
            if node.partbound.is_default:
                parent_table.default_partition = key
            parent_table.partitions.append(key)
            for col in parent_table.columns.values():
                table.columns.setdefault(col.name, Column(col.name, col.type, col.not_null))
    del written


def check_default_partition(parent: Table, s: Stmt) -> None:
    """A new partition's rows must not be in the DEFAULT partition: PostgreSQL locks and scans it."""
    if parent.default_partition and s.touch(parent.default_partition, parent.default_partition, Lock.ACCESS_EXCLUSIVE):
        s.scan(parent.default_partition, parent.default_partition)
        s.effect.reasons.append(Reason("partition-scan", parent.default_partition))


def relations_in(query) -> list[ast.RangeVar]:
    return [n for n in walk(query) if isinstance(n, ast.RangeVar)]


def read_sources(query, s: Stmt, scan: bool) -> list[str]:
    """Lock (and optionally scan) the relations a query reads; returns their catalog keys."""
    keys = []
    for rv in relations_in(query):
        key, written, exists = s.touch_rv(rv, Lock.ACCESS_SHARE)
        keys.append(key)
        if exists and scan:
            s.scan(key, written)
    return keys


def _create_table_as(node: ast.CreateTableAsStmt, s: Stmt) -> None:
    key, _written = names(node.into.rel)
    sources = read_sources(node.query, s, scan=not node.into.skipData)
    kind = "m" if node.objtype == ObjectType.OBJECT_MATVIEW else "r"
    s.catalog.tables[key] = Table(key, kind=kind, sources=sources)
    if s.state.record_new:
        s.state.new_tables.add(key)


def _view(node: ast.ViewStmt, s: Stmt) -> None:
    key, written = names(node.view)
    if node.replace:
        s.touch(key, written, Lock.ACCESS_EXCLUSIVE)
    sources = read_sources(node.query, s, scan=False)
    if key not in s.catalog.tables:
        s.catalog.tables[key] = Table(key, kind="v")
        if s.state.record_new:
            s.state.new_tables.add(key)
    s.catalog.tables[key].sources = sources


def _drop(node: ast.DropStmt, s: Stmt) -> None:
    kind = node.removeType
    concurrent = bool(node.concurrent)
    for obj in node.objects or ():
        parts = obj if isinstance(obj, tuple | list) else (obj,)
        if kind in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_VIEW, ObjectType.OBJECT_MATVIEW):
            key, written = list_name(parts)
            s.touch(key, written, Lock.ACCESS_EXCLUSIVE)
            table = s.catalog.tables.get(key)
            # Dropping a table drops the foreign-key triggers on the tables at either end.
            for fk in table.foreign_keys() if table else []:
                if fk.ref_table and fk.ref_table != key:
                    s.touch(fk.ref_table, fk.ref_table, Lock.ACCESS_EXCLUSIVE)
            for other, _fk in s.catalog.referencing(key):
                s.touch(other, other, Lock.ACCESS_EXCLUSIVE)
            s.catalog.tables.pop(key, None)
            for index_key in [k for k, i in s.catalog.indexes.items() if i.table == key]:
                del s.catalog.indexes[index_key]
            s.state.new_tables.discard(key)
        elif kind == ObjectType.OBJECT_INDEX:
            if concurrent:
                s.effect.no_transaction = True
            key, _written = list_name(parts)
            table_key = s.catalog.index_table(key)
            if table_key:
                s.touch(table_key, table_key, Lock.SHARE_UPDATE_EXCLUSIVE if concurrent else Lock.ACCESS_EXCLUSIVE)
                s.catalog.indexes.pop(key, None)
        elif kind in (ObjectType.OBJECT_TRIGGER, ObjectType.OBJECT_POLICY, ObjectType.OBJECT_RULE):
            key, written = list_name(parts[:-1])
            s.touch(key, written, Lock.ACCESS_EXCLUSIVE)
        elif kind == ObjectType.OBJECT_TYPE:
            key, _written = list_name(parts[0].names if isinstance(parts[0], ast.TypeName) else parts)
            s.catalog.enums.pop(key, None)


def _rename(node: ast.RenameStmt, s: Stmt) -> None:
    kind = node.renameType
    if kind == ObjectType.OBJECT_INDEX:
        # ALTER INDEX ... RENAME takes SHARE UPDATE EXCLUSIVE on the index only (12+).
        key, _written = names(node.relation)
        index = s.catalog.indexes.pop(key, None)
        if index is not None:
            index.name = node.newname
            s.catalog.indexes[qualify(node.relation.schemaname, node.newname)] = index
        return
    if node.relation is None:
        return
    key, written = names(node.relation)
    if kind == ObjectType.OBJECT_TRIGGER:
        s.touch(key, written, Lock.ACCESS_EXCLUSIVE)
        return
    s.touch(key, written, Lock.ACCESS_EXCLUSIVE)
    table = s.catalog.tables.get(key)
    if kind in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_VIEW, ObjectType.OBJECT_MATVIEW):
        new_key = qualify(node.relation.schemaname, node.newname)
        if table is not None:
            table.name = new_key
            s.catalog.tables[new_key] = s.catalog.tables.pop(key)
            for index in s.catalog.indexes.values():
                if index.table == key:
                    index.table = new_key
        if s.state.is_new(key):
            s.state.new_tables.discard(key)
            s.state.new_tables.add(new_key)
    elif kind == ObjectType.OBJECT_COLUMN and table is not None and node.subname in table.columns:
        column = table.columns.pop(node.subname)
        column.name = node.newname
        table.columns[node.newname] = column
    elif kind == ObjectType.OBJECT_TABCONSTRAINT and table is not None and node.subname in table.constraints:
        constraint = table.constraints.pop(node.subname)
        constraint.name = node.newname
        table.constraints[node.newname] = constraint


def _index(node: ast.IndexStmt, s: Stmt) -> None:
    key, written = names(node.relation)
    mode = Lock.SHARE_UPDATE_EXCLUSIVE if node.concurrent else Lock.SHARE
    if node.concurrent:
        s.effect.no_transaction = True
    if s.touch(key, written, mode):
        s.scan(key, written)
        s.lock_partitions(key, mode)
    columns = tuple(e.name or "" for e in node.indexParams or ())
    index_name = node.idxname or f"{key.split('.')[-1]}_{'_'.join(c or 'expr' for c in columns)}_idx"
    s.catalog.indexes[qualify(node.relation.schemaname, index_name)] = Index(
        index_name, key, columns, unique=bool(node.unique)
    )


# Statement kind (pglast node class name) -> handler.
HANDLERS = {
    "CreateStmt": _create,
    "CreateTableAsStmt": _create_table_as,
    "ViewStmt": _view,
    "DropStmt": _drop,
    "RenameStmt": _rename,
    "IndexStmt": _index,
}
