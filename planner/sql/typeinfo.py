"""Column types as PostgreSQL sees them, and whether changing one to another rewrites the table.

PostgreSQL skips the rewrite of ALTER COLUMN TYPE when the change is binary-coercible and the new
type modifier accepts every old value (varchar widened or to text, numeric precision widened at
the same scale, timestamp precision raised, timestamp <-> timestamptz in a UTC session on 12+).
Everything else, and every change of a column whose type we do not know, is treated as a rewrite.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from pglast import ast, parse_sql
from pglast.parser import ParseError

# Spellings of one type, folded to PostgreSQL's internal name.
_ALIASES = {
    "int": "int4",
    "integer": "int4",
    "smallint": "int2",
    "bigint": "int8",
    "real": "float4",
    "float": "float8",
    "double precision": "float8",
    "decimal": "numeric",
    "character varying": "varchar",
    "character": "bpchar",
    "char": "bpchar",
    "boolean": "bool",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "time without time zone": "time",
    "time with time zone": "timetz",
    "bit varying": "varbit",
    "serial4": "serial",
    "serial8": "bigserial",
    "serial2": "smallserial",
}
SERIAL_TYPES = {"serial", "bigserial", "smallserial"}
_PRECISION_TYPES = {"timestamp", "timestamptz", "time", "timetz", "interval"}
_TEXT_LIKE = {"text", "varchar"}


@dataclass(frozen=True)
class TypeRef:
    """A column type: internal name, type modifiers (e.g. (10, 2)), and array dimensions."""

    name: str
    mods: tuple[int, ...] = ()
    array: int = 0

    def __str__(self) -> str:
        mods = f"({','.join(map(str, self.mods))})" if self.mods else ""
        return f"{self.name}{mods}{'[]' * self.array}"

    @classmethod
    def from_node(cls, node: ast.TypeName) -> TypeRef:
        names = [n.sval for n in node.names or () if isinstance(n, ast.String)]
        name = names[-1].lower() if names else "unknown"
        name = _ALIASES.get(name, name)
        mods = []
        for mod in node.typmods or ():
            value = getattr(getattr(mod, "val", None), "ival", None)
            if isinstance(value, int):
                mods.append(value)
        return cls(name, tuple(mods), len(node.arrayBounds or ()))

    @classmethod
    def parse(cls, text: str) -> TypeRef:
        """From a type as written or as `format_type()` prints it ("character varying(50)")."""
        return _parse_type(text.strip())


@lru_cache(maxsize=512)
def _parse_type(text: str) -> TypeRef:
    lowered = text.lower()
    if lowered in _ALIASES and lowered not in ("char", "character"):  # bare char means char(1)
        return TypeRef(_ALIASES[lowered])
    try:
        stmt = parse_sql(f"SELECT NULL::{text}")[0].stmt
        return TypeRef.from_node(stmt.targetList[0].val.typeName)
    except (ParseError, AttributeError, IndexError, TypeError):
        return TypeRef(lowered)


def _widens(old: tuple[int, ...], new: tuple[int, ...]) -> bool:
    """The new single limit (length or precision) accepts everything the old one did."""
    if not new:
        return True
    if not old:
        return False
    return new[0] >= old[0]


def _same_base_rewrites(old: TypeRef, new: TypeRef) -> bool:
    if old.mods == new.mods:
        return False
    if old.name in ("varchar", "varbit"):
        return not _widens(old.mods, new.mods)
    if old.name == "bpchar":
        return bool(new.mods)  # char(n) -> bpchar is free; any other length pads or truncates
    if old.name == "numeric":
        if not new.mods:
            return False
        if not old.mods:
            return True
        old_scale = old.mods[1] if len(old.mods) > 1 else 0
        new_scale = new.mods[1] if len(new.mods) > 1 else 0
        return new_scale != old_scale or new.mods[0] < old.mods[0]
    if old.name in _PRECISION_TYPES:
        old_precision = old.mods[-1] if old.mods else 6
        new_precision = new.mods[-1] if new.mods else 6
        return new_precision < old_precision
    return True


def change_rewrites(old: TypeRef | None, new: TypeRef, *, pg_version: int, utc_session: bool = True) -> bool:
    """Whether ALTER COLUMN ... TYPE new (without a non-trivial USING) rewrites the table."""
    if old is None:
        return True  # unknown column type: assume the worst, a miss costs more than a false alarm
    if old.array != new.array:
        return True
    if old.name == new.name:
        return _same_base_rewrites(old, new)
    if old.name in _TEXT_LIKE and new.name == "text":
        return False
    if old.name == "text" and new.name == "varchar":
        return bool(new.mods)
    if (old.name, new.name) == ("cidr", "inet"):
        return False
    if {old.name, new.name} == {"timestamp", "timestamptz"}:
        # 12+: free when the session time zone is UTC (the two representations then coincide).
        if pg_version < 12 or not utc_session:
            return True
        return _same_base_rewrites(TypeRef("timestamp", old.mods), TypeRef("timestamp", new.mods))
    return True


def is_serial(type_ref: TypeRef) -> bool:
    return type_ref.name in SERIAL_TYPES and not type_ref.array
