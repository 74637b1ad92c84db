"""What exists in the target database before a migration runs: tables, columns, constraints, indexes.

Filled from DDL text (`Catalog.from_sql`, for tests and offline use) or, later, by introspecting a
live target (planner/pg). Tables it lists are pre-existing and assumed non-empty; with an empty
catalog every table the migration does not create itself is assumed to exist.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from planner.sql.typeinfo import TypeRef


def qualify(schema: str | None, name: str) -> str:
    """Catalog key of a relation: `name` in the default schema, `schema.name` elsewhere."""
    return name if schema in (None, "", "public") else f"{schema}.{name}"


@dataclass
class Column:
    name: str
    type: str  # as format_type() or the DDL spells it, e.g. "character varying(50)"
    not_null: bool = False

    @property
    def type_ref(self) -> TypeRef:
        return TypeRef.parse(self.type)


@dataclass
class Constraint:
    name: str
    kind: str  # "p" primary key, "u" unique, "f" foreign key, "c" check, "x" exclusion, "n" not null
    columns: tuple[str, ...] = ()
    validated: bool = True
    ref_table: str | None = None  # foreign keys: catalog key of the referenced table
    ref_columns: tuple[str, ...] = ()
    not_null_column: str | None = None  # a CHECK (col IS NOT NULL), or a NOT NULL constraint's column
    on_delete: str = "a"  # foreign keys: a no action, r restrict, c cascade, n set null, d set default


@dataclass
class Index:
    name: str
    table: str
    columns: tuple[str, ...] = ()  # plain column names; expressions are recorded as ""
    unique: bool = False


@dataclass
class Table:
    name: str
    kind: str = "r"  # "r" table, "p" partitioned table, "v" view, "m" materialized view
    columns: dict[str, Column] = field(default_factory=dict)
    constraints: dict[str, Constraint] = field(default_factory=dict)
    partitions: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # views and materialized views: tables they read
    unlogged: bool = False
    partition_key: tuple[str, ...] = ()  # partitioned tables: the key's plain columns
    default_partition: str | None = None  # partitioned tables: catalog key of the DEFAULT partition
    rows: int | None = None  # estimated (pg_class.reltuples), None when unknown
    bytes: int | None = None  # estimated heap + toast size, None when unknown
    index_bytes: int | None = None

    def foreign_keys(self) -> list[Constraint]:
        return [c for c in self.constraints.values() if c.kind == "f"]

    def has_validated_not_null_check(self, column: str) -> bool:
        return any(c.not_null_column == column and c.validated for c in self.constraints.values())


@dataclass
class Catalog:
    """Schema of the target before the migration (plus throughput figures for duration estimates)."""

    tables: dict[str, Table] = field(default_factory=dict)
    indexes: dict[str, Index] = field(default_factory=dict)
    enums: dict[str, list[str]] = field(default_factory=dict)
    domains: dict[str, bool] = field(default_factory=dict)  # domain -> has CHECK / NOT NULL constraints
    pg_version: int | None = None
    # The session time zone: timestamp <-> timestamptz is rewrite-free on 12+ only in UTC.
    timezone: str = "UTC"
    # Seconds estimates: bytes a full-table rewrite or scan processes per second on the target.
    rewrite_bytes_per_second: float = 100 * 1024 * 1024
    scan_bytes_per_second: float = 400 * 1024 * 1024

    @classmethod
    def from_sql(cls, setup_sql: str, pg_version: int = 15) -> Catalog:
        """Learn the schema the DDL text creates. Its tables count as existing (non-empty) ones."""
        from planner.sql.model import FileState, apply_statement
        from planner.sql.source import split

        catalog = cls(pg_version=pg_version)
        state = FileState(catalog, pg_version=pg_version, record_new=False)
        for chunk in split(setup_sql):
            if chunk.node is not None:
                apply_statement(chunk.node, state)
        return catalog

    def copy(self) -> Catalog:
        return copy.deepcopy(self)

    def table(self, key: str) -> Table | None:
        return self.tables.get(key)

    def index_table(self, index_key: str) -> str | None:
        index = self.indexes.get(index_key)
        return index.table if index else None

    def referencing(self, key: str) -> list[tuple[str, Constraint]]:
        """(table, foreign key) pairs of other tables whose foreign keys point at `key`."""
        found = []
        for name, table in self.tables.items():
            for fk in table.foreign_keys():
                if fk.ref_table == key and name != key:
                    found.append((name, fk))
        return found

    def indexes_of(self, key: str) -> list[Index]:
        return [i for i in self.indexes.values() if i.table == key]
