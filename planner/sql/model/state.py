"""State the lock model carries through a file, and the effect it computes for one statement."""

from __future__ import annotations

from dataclasses import dataclass, field

from pglast import ast

from planner.sql.catalog import Catalog, qualify
from planner.sql.locks import Lock, stronger


@dataclass
class Reason:
    """One fact behind the effect, for rules and messages: what causes a rewrite, a scan, a lock."""

    kind: str  # e.g. "volatile-default", "type-rewrite", "not-null-scan", "fk-validation"
    table: str
    column: str | None = None
    detail: str = ""


@dataclass
class Effect:
    locks: dict[str, Lock] = field(default_factory=dict)
    rewrites: list[str] = field(default_factory=list)
    scans: list[str] = field(default_factory=list)
    full_table_dml: list[str] = field(default_factory=list)  # UPDATE/DELETE of every row
    extra_blocks: dict[str, set[str]] = field(default_factory=dict)
    no_transaction: bool = False  # cannot run inside a transaction block
    reasons: list[Reason] = field(default_factory=list)
    new_tables: list[str] = field(default_factory=list)  # touched but created earlier in this file

    def lock(self, name: str, mode: Lock) -> None:
        self.locks[name] = stronger(self.locks.get(name), mode)

    def rewrite(self, name: str) -> None:
        if name not in self.rewrites:
            self.rewrites.append(name)
        self.scan(name)

    def scan(self, name: str) -> None:
        if name not in self.scans:
            self.scans.append(name)


@dataclass
class FileState:
    """What the analysis knows while walking a file: the schema so far and the session's settings."""

    catalog: Catalog
    pg_version: int = 15
    record_new: bool = True  # False when learning a catalog: created tables are pre-existing
    new_tables: set[str] = field(default_factory=set)
    settings: dict[str, str] = field(default_factory=dict)
    in_transaction_block: bool = False  # inside an explicit BEGIN ... COMMIT

    def is_new(self, key: str) -> bool:
        return key in self.new_tables

    @property
    def utc_session(self) -> bool:
        zone = self.settings.get("timezone", self.catalog.timezone or "UTC")
        return zone.upper() in ("UTC", "ETC/UTC", "GMT", "ZULU", "UCT", "Z", "+00", "00:00", "0")


class Stmt:
    """Helper bound to one statement: records locks on existing relations only."""

    def __init__(self, state: FileState, effect: Effect):
        self.state = state
        self.effect = effect
        self.catalog = state.catalog

    def touch(self, key: str, written: str, mode: Lock) -> bool:
        """Lock `written` (catalog key `key`) unless the table is new; returns whether it exists."""
        if self.state.is_new(key):
            if written not in self.effect.new_tables:
                self.effect.new_tables.append(written)
            return False
        self.effect.lock(written, mode)
        return True

    def touch_rv(self, rv: ast.RangeVar, mode: Lock) -> tuple[str, str, bool]:
        key, written = names(rv)
        return key, written, self.touch(key, written, mode)

    def rewrite(self, key: str, written: str) -> None:
        if not self.state.is_new(key):
            for target in self._storage(key, written):
                self.effect.rewrite(target)

    def scan(self, key: str, written: str) -> None:
        if not self.state.is_new(key):
            for target in self._storage(key, written):
                self.effect.scan(target)

    def _storage(self, key: str, written: str) -> list[str]:
        """A partitioned table has no storage of its own: its known partitions are rewritten/scanned."""
        table = self.catalog.table(key)
        if table and table.kind == "p" and table.partitions:
            return list(table.partitions)
        return [written]

    def lock_partitions(self, key: str, mode: Lock) -> None:
        table = self.catalog.table(key)
        if table and table.kind == "p":
            for partition in table.partitions:
                self.touch(partition, partition, mode)


def names(rv: ast.RangeVar) -> tuple[str, str]:
    """(catalog key, name as written) of a relation reference."""
    written = f"{rv.schemaname}.{rv.relname}" if rv.schemaname else rv.relname
    return qualify(rv.schemaname, rv.relname), written


def list_name(parts) -> tuple[str, str]:
    values = [p.sval for p in parts if isinstance(p, ast.String)]
    schema = values[-2] if len(values) >= 2 else None
    written = ".".join(values[-2:]) if len(values) >= 2 else values[-1]
    return qualify(schema, values[-1]), written
