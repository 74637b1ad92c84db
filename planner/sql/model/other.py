"""Maintenance and the rest: TRUNCATE, VACUUM, CLUSTER, REINDEX, REFRESH, COMMENT, types, settings."""

from __future__ import annotations

from pglast import ast
from pglast.enums import DropBehavior, ObjectType
from pglast.enums import ReindexObjectType as R
from pglast.enums import TransactionStmtKind as K

from planner.sql.locks import Lock
from planner.sql.model.state import Reason, Stmt, list_name, names
from planner.sql.typeinfo import TypeRef


def _truncate(node: ast.TruncateStmt, s: Stmt) -> None:
    targets = [names(rv) for rv in node.relations or ()]
    if node.behavior == DropBehavior.DROP_CASCADE:
        for key, _written in list(targets):
            targets.extend((other, other) for other, _fk in s.catalog.referencing(key))
    for key, written in targets:
        # ACCESS EXCLUSIVE, but no work that grows with the table: the old files are just unlinked.
        s.touch(key, written, Lock.ACCESS_EXCLUSIVE)


def _vacuum(node: ast.VacuumStmt, s: Stmt) -> None:
    options = {d.defname for d in node.options or ()}
    full = node.is_vacuumcmd and "full" in options
    if node.is_vacuumcmd:
        s.effect.no_transaction = True
    for rel in node.rels or ():
        if rel.relation is None:
            continue
        key, written, exists = s.touch_rv(rel.relation, Lock.ACCESS_EXCLUSIVE if full else Lock.SHARE_UPDATE_EXCLUSIVE)
        if exists and full:
            s.rewrite(key, written)


def _cluster(node: ast.ClusterStmt, s: Stmt) -> None:
    if node.relation is None:
        return
    key, written, exists = s.touch_rv(node.relation, Lock.ACCESS_EXCLUSIVE)
    if exists:
        s.rewrite(key, written)


def _reindex(node: ast.ReindexStmt, s: Stmt) -> None:
    concurrent = any(d.defname == "concurrently" for d in node.params or ())
    if concurrent:
        s.effect.no_transaction = True
    mode = Lock.SHARE_UPDATE_EXCLUSIVE if concurrent else Lock.SHARE
    if node.kind == R.REINDEX_OBJECT_TABLE and node.relation is not None:
        key, written = names(node.relation)
    elif node.kind == R.REINDEX_OBJECT_INDEX and node.relation is not None:
        table_key = s.catalog.index_table(names(node.relation)[0])
        if table_key is None:
            return
        key = written = table_key
    else:
        return
    if s.touch(key, written, mode):
        s.scan(key, written)
        if not concurrent:
            # The index itself is locked ACCESS EXCLUSIVE: queries planning on the table wait too.
            s.effect.extra_blocks.setdefault(written, set()).add("SELECT")


def _simple(mode: Lock, attr: str = "relation"):
    def handler(node, s: Stmt) -> None:
        rv = getattr(node, attr, None)
        if isinstance(rv, ast.RangeVar):
            s.touch_rv(rv, mode)

    return handler


def _comment(node: ast.CommentStmt, s: Stmt) -> None:
    obj = node.object
    if node.objtype in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_VIEW, ObjectType.OBJECT_MATVIEW):
        key, written = list_name(obj)
    elif node.objtype == ObjectType.OBJECT_COLUMN:
        key, written = list_name(obj[:-1])
    else:
        return
    s.touch(key, written, Lock.SHARE_UPDATE_EXCLUSIVE)


def _refresh(node: ast.RefreshMatViewStmt, s: Stmt) -> None:
    key, written, exists = s.touch_rv(node.relation, Lock.EXCLUSIVE if node.concurrent else Lock.ACCESS_EXCLUSIVE)
    view = s.catalog.table(key)
    for source in view.sources if view else []:
        if s.touch(source, source, Lock.ACCESS_SHARE):
            s.scan(source, source)
    # CONCURRENTLY diffs old and new contents; a plain refresh reads the new heap only to rebuild indexes.
    if exists and (node.concurrent or view is None or s.catalog.indexes_of(key)):
        s.scan(key, written)
    if exists:
        if not node.concurrent:
            s.effect.rewrites.append(written)


def _alter_enum(node: ast.AlterEnumStmt, s: Stmt) -> None:
    key, _written = list_name(node.typeName)
    if node.newVal and not node.oldVal and s.state.pg_version < 12:
        s.effect.no_transaction = True  # ADD VALUE cannot run in a transaction block before 12
    values = s.catalog.enums.setdefault(key, [])
    if node.oldVal and node.oldVal in values:
        values[values.index(node.oldVal)] = node.newVal
    elif node.newVal and node.newVal not in values:
        values.append(node.newVal)


def _create_domain(node: ast.CreateDomainStmt, s: Stmt) -> None:
    key, _written = list_name(node.domainname)
    s.catalog.domains[key] = bool(node.constraints)


def _alter_domain(node: ast.AlterDomainStmt, s: Stmt) -> None:
    """Adding (or validating) a domain constraint checks every column of that type, under SHARE."""
    key, _written = list_name(node.typeName)
    checks = (node.subtype == "C" and not node.def_.skip_validation) or node.subtype in ("O", "V")
    if checks:
        domain = key.split(".")[-1]
        for table_key, table in list(s.catalog.tables.items()):
            if any(TypeRef.parse(c.type).name == domain for c in table.columns.values()):
                if s.touch(table_key, table_key, Lock.SHARE):
                    s.scan(table_key, table_key)
                    s.effect.reasons.append(Reason("domain-check", table_key, detail=domain))
    if node.subtype in ("C", "O"):
        s.catalog.domains[key] = True


def _grant(node: ast.GrantStmt, s: Stmt) -> None:
    if s.state.pg_version >= 18 and node.objtype == ObjectType.OBJECT_TABLE:
        for rv in node.objects or ():
            if isinstance(rv, ast.RangeVar):
                s.touch_rv(rv, Lock.ACCESS_SHARE)  # measured on 18; 15 takes no table lock


def _create_enum(node: ast.CreateEnumStmt, s: Stmt) -> None:
    key, _written = list_name(node.typeName)
    s.catalog.enums[key] = [v.sval for v in node.vals or () if isinstance(v, ast.String)]


def _set(node: ast.VariableSetStmt, s: Stmt) -> None:
    if not node.name:
        return
    value = ""
    for arg in node.args or ():
        val = getattr(arg, "val", None)
        value = str(getattr(val, "sval", None) or getattr(val, "ival", ""))
    s.state.settings[node.name.lower()] = value


def _transaction(node: ast.TransactionStmt, s: Stmt) -> None:
    if node.kind in (K.TRANS_STMT_BEGIN, K.TRANS_STMT_START):
        s.state.in_transaction_block = True
    elif node.kind in (K.TRANS_STMT_COMMIT, K.TRANS_STMT_ROLLBACK, K.TRANS_STMT_PREPARE):
        s.state.in_transaction_block = False


def _object_schema(node: ast.AlterObjectSchemaStmt, s: Stmt) -> None:
    if node.relation is not None:
        s.touch_rv(node.relation, Lock.ACCESS_EXCLUSIVE)


def _no_transaction(node, s: Stmt) -> None:
    s.effect.no_transaction = True


def _create_stats(node: ast.CreateStatsStmt, s: Stmt) -> None:
    for rel in node.relations or ():
        if isinstance(rel, ast.RangeVar):
            s.touch_rv(rel, Lock.SHARE_UPDATE_EXCLUSIVE)


# Statement kind (pglast node class name) -> handler.
HANDLERS = {
    "CreateStatsStmt": _create_stats,
    "TruncateStmt": _truncate,
    "VacuumStmt": _vacuum,
    "ClusterStmt": _cluster,
    "ReindexStmt": _reindex,
    "MergeStmt": _simple(Lock.ROW_EXCLUSIVE),
    "CreateTrigStmt": _simple(Lock.SHARE_ROW_EXCLUSIVE),
    "CreatePolicyStmt": _simple(Lock.ACCESS_EXCLUSIVE, "table"),
    "AlterPolicyStmt": _simple(Lock.ACCESS_EXCLUSIVE, "table"),
    "RuleStmt": _simple(Lock.ACCESS_EXCLUSIVE),
    "CommentStmt": _comment,
    "RefreshMatViewStmt": _refresh,
    "AlterEnumStmt": _alter_enum,
    "CreateEnumStmt": _create_enum,
    "CreateDomainStmt": _create_domain,
    "AlterDomainStmt": _alter_domain,
    "GrantStmt": _grant,
    "VariableSetStmt": _set,
    "TransactionStmt": _transaction,
    "AlterObjectSchemaStmt": _object_schema,
    "CreatedbStmt": _no_transaction,
    "DropdbStmt": _no_transaction,
    "AlterSystemStmt": _no_transaction,
    "CreateTableSpaceStmt": _no_transaction,
}
