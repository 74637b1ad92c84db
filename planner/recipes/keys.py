"""Primary and foreign keys as PostgreSQL prints them (pg_get_constraintdef), read with pglast.

A recipe that moves a primary key re-creates the foreign keys referencing it exactly as they were —
ON DELETE / ON UPDATE actions, MATCH FULL, DEFERRABLE, SET NULL (columns) — which the analyzer's
Catalog does not keep. The definition is parsed by PostgreSQL's own grammar, given the recipe's
names and NOT VALID, and printed by pglast's deparser: no name is pasted into SQL as text.
"""

from __future__ import annotations

from dataclasses import dataclass

from pglast import ast, parse_sql
from pglast.enums import AlterTableType, ConstrType, ObjectType
from pglast.parser import ParseError
from pglast.stream import RawStream
from psycopg import sql

from planner.recipes.base import RecipeError
from planner.recipes.lookup import TableRef
from planner.recipes.sqltext import as_text, ident
from planner.sql.catalog import Constraint


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key: its table (schema and name, unquoted), catalog constraint and definition."""

    schema: str
    table: str
    constraint: Constraint
    definition: str
    rows: int  # the referencing table's estimated rows (a VALIDATE scans them)

    @property
    def name(self) -> str:
        return self.constraint.name

    @property
    def ident(self) -> sql.Identifier:
        return ident(self.schema, self.table)

    @property
    def regclass(self) -> str:
        return as_text(self.ident)

    @property
    def validated(self) -> bool:
        """Validated and enforced (PostgreSQL 18 has NOT ENFORCED ones, never validated)."""
        return self.constraint.validated and parsed(self.definition).is_enforced is not False


def parsed(definition: str) -> ast.Constraint:
    """A constraint as pg_get_constraintdef() prints it, parsed by PostgreSQL's grammar."""
    try:
        statement = parse_sql(f"ALTER TABLE t ADD CONSTRAINT k {definition}")[0].stmt
    except ParseError:
        raise RecipeError("table", f"cannot read constraint definition {definition!r}") from None
    command = statement.cmds[0] if isinstance(statement, ast.AlterTableStmt) and len(statement.cmds) == 1 else None
    if command is None or command.subtype != AlterTableType.AT_AddConstraint:
        raise RecipeError("table", f"cannot read constraint definition {definition!r}")
    return command.def_


def referencing(schema, ref: TableRef, columns: tuple[str, ...]) -> list[ForeignKey]:
    """Foreign keys whose referenced columns are exactly `columns` of `ref` (they depend on its index).

    Refused (RecipeError on "table"): one whose definition was not read, or on a partitioned table."""
    definitions = getattr(schema, "key_definitions", {})
    found = []
    for key, table in sorted(schema.catalog.tables.items()):
        for constraint in sorted(table.constraints.values(), key=lambda c: c.name):
            if constraint.kind != "f" or constraint.ref_table != ref.key or set(constraint.ref_columns) != set(columns):
                continue
            known = definitions.get((key, constraint.name))
            where = f"foreign key {constraint.name} on {key} references {ref.key}({', '.join(columns)})"
            if known is None:
                raise RecipeError("table", f"{where}, but its definition could not be read to re-create it")
            if table.kind == "p":
                raise RecipeError("table", f"{where} from a partitioned table; drop it first, then run this recipe")
            found.append(ForeignKey(known.schema, known.table, constraint, known.definition, max(table.rows or 0, 0)))
    return found


def primary_key_extras(schema, ref: TableRef, constraint: Constraint) -> list[str]:
    """What the primary key has beyond its columns (INCLUDE, WITH …, tablespace, DEFERRABLE)."""
    known = getattr(schema, "key_definitions", {}).get((ref.key, constraint.name))
    if known is None:
        return []
    key = parsed(known.definition)
    extras = (
        ("INCLUDE", key.including),
        ("WITH (…)", key.options),
        ("USING INDEX TABLESPACE", key.indexspace),
        ("DEFERRABLE", key.deferrable),
    )
    return [words for words, present in extras if present]


def _relation(schema: str, name: str) -> ast.RangeVar:
    return ast.RangeVar(schemaname=schema, relname=name, inh=True, relpersistence="p")


def add_not_valid(fk: ForeignKey, referenced: TableRef) -> str:
    """ALTER TABLE … ADD CONSTRAINT the foreign key as it was, NOT VALID (unless NOT ENFORCED)."""
    constraint = parsed(fk.definition)
    if constraint.contype != ConstrType.CONSTR_FOREIGN:
        raise RecipeError("table", f"{fk.name} is not a foreign key: {fk.definition!r}")
    constraint.conname = fk.name
    constraint.pktable = _relation(referenced.schema, referenced.name)
    if constraint.is_enforced is not False:
        constraint.skip_validation, constraint.initially_valid = True, False
    statement = ast.AlterTableStmt(
        relation=_relation(fk.schema, fk.table),
        cmds=(ast.AlterTableCmd(subtype=AlterTableType.AT_AddConstraint, def_=constraint),),
        objtype=ObjectType.OBJECT_TABLE,
    )
    return RawStream()(statement)
