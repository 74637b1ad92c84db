"""SQL of one batch, and the adaptive batch size.

A batch is two statements in one short transaction:
1. *span*: the next `limit` keys after the checkpoint, in key order, read from the key's unique
   index (keyset pagination, never OFFSET) — gives the batch's last key (the new checkpoint) and
   whether the slice is exhausted.
2. *apply*: `UPDATE … WHERE key > checkpoint AND key <= last` — a range the planner sees with real
   values, so it is always an index range scan (a join against a list of keys can flip to a hash
   join over the whole table on big batches). The UPDATE takes FOR NO KEY UPDATE row locks (the key
   is never assigned, validate.py refuses it), so foreign-key checks of the application (KEY SHARE)
   never wait for us; only writes to the very rows of the batch wait, and at most one batch.

With before-image capture, the rows are first locked and copied (INSERT … SELECT … FOR NO KEY
UPDATE: the copy is of the latest committed version, and the lock keeps it so), then the UPDATE is
restricted to exactly the copied keys, so every changed row has its before-image, in the same
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from planner.pg.backfill import bookkeeping
from planner.pg.backfill.spec import BatchLimits
from planner.pg.backfill.validate import Target, user_sql

# Key types with max()/min() aggregates (uuid, for one, has none before PostgreSQL 18).
HAS_MAX = {20, 21, 23, 25, 1043, 1700, 1082, 1114, 1184}  # ints, text, varchar, numeric, date, timestamp(tz)


@dataclass(frozen=True)
class Bounds:
    """Where a batch may look: after the checkpoint, inside the slice, not past the stop key."""

    after: list[str] | None  # exclusive, whole key (the checkpoint)
    through: list[str] | None  # inclusive, whole key (the batch's last key, or the rollback stop key)
    lo: str | None  # exclusive, first key column (slice start)
    hi: str | None  # inclusive, first key column (slice end)


class BatchSql:
    """Builds the statements of one direction/mode of a run against a resolved Target."""

    def __init__(self, target: Target, *, mode: str, run_id: int):
        # mode: "forward", "forward_capture", "rollback_images", "rollback_reverse"
        self.target = target
        self.mode = mode
        self.images = bookkeeping.before_image_table(run_id)
        self.key = target.key

    # -- building blocks -------------------------------------------------------------------------

    def _cols(self, relation: sql.Composable | None) -> list[sql.Composable]:
        if relation is None:
            return [sql.Identifier(column.name) for column in self.key]
        return [sql.SQL("{}.{}").format(relation, sql.Identifier(column.name)) for column in self.key]

    def _values(self, values: list[str]) -> sql.Composable:
        casts = [sql.SQL("CAST(%s AS {})").format(sql.SQL(column.type_sql)) for column in self.key]
        return sql.SQL("({})").format(sql.SQL(", ").join(casts))

    def _range(self, relation, bounds: Bounds) -> tuple[sql.Composable, list]:
        columns = self._cols(relation)
        row = sql.SQL("({})").format(sql.SQL(", ").join(columns))
        first_cast = sql.SQL("CAST(%s AS {})").format(sql.SQL(self.key[0].type_sql))
        parts, params = [], []
        if bounds.after is not None:
            parts.append(sql.SQL("{} > {}").format(row, self._values(bounds.after)))
            params += bounds.after
        if bounds.through is not None:
            parts.append(sql.SQL("{} <= {}").format(row, self._values(bounds.through)))
            params += bounds.through
        if bounds.lo is not None:
            parts.append(sql.SQL("{} > {}").format(columns[0], first_cast))
            params.append(bounds.lo)
        if bounds.hi is not None:
            parts.append(sql.SQL("{} <= {}").format(columns[0], first_cast))
            params.append(bounds.hi)
        if not parts:
            return sql.SQL("true"), []
        return sql.SQL(" AND ").join(parts), params

    @property
    def _assignments(self) -> str:
        return self.target.reverse_set_sql if self.mode == "rollback_reverse" else self.target.set_sql

    @property
    def _predicate(self) -> str | None:
        return self.target.reverse_where_sql if self.mode == "rollback_reverse" else self.target.where_sql

    # -- statements --------------------------------------------------------------------------------

    def span(self, bounds: Bounds, limit: int) -> tuple[sql.Composable, list]:
        """(count, last key as text[], first key as text[]) of the next `limit` keys."""
        source = self.images if self.mode == "rollback_images" else self.target.table
        where, params = self._range(None, bounds)
        columns = self._cols(None)
        ascending = sql.SQL(", ").join(columns)
        descending = sql.SQL(", ").join(sql.SQL("{} DESC").format(column) for column in columns)
        as_text = sql.SQL("ARRAY[{}]").format(sql.SQL(", ").join(sql.SQL("{}::text").format(c) for c in columns))
        if len(columns) == 1 and self.key[0].type_oid in HAS_MAX:
            # One pass over the index-only scan; min/max of the key are the batch's first/last key.
            statement = sql.SQL(
                "SELECT count(*), ARRAY[max({col})::text], ARRAY[min({col})::text] "
                "FROM (SELECT {col} FROM {source} WHERE {where} ORDER BY {col} LIMIT %s) AS span"
            ).format(col=columns[0], source=source, where=where)
            return statement, [*params, limit]
        # A row has no max(): read the (materialized, small) span twice, sorted each way.
        statement = sql.SQL(
            "WITH span AS (SELECT {cols} FROM {source} WHERE {where} ORDER BY {asc} LIMIT %s) "
            "SELECT (SELECT count(*) FROM span), "
            "(SELECT {text} FROM span ORDER BY {desc} LIMIT 1), "
            "(SELECT {text} FROM span ORDER BY {asc} LIMIT 1)"
        ).format(cols=ascending, source=source, where=where, asc=ascending, desc=descending, text=as_text)
        return statement, [*params, limit]

    def capture(self, bounds: Bounds) -> tuple[sql.Composable, list]:
        """Copy (key, changed columns) of the rows the batch will change, locking them."""
        table = self.target.table
        columns = [*self._cols(None), *(sql.Identifier(name) for name in self.target.set_columns)]
        where, params = self._range(table, bounds)
        if self._predicate:
            where = sql.SQL("{} AND ({})").format(where, user_sql(self._predicate))
        statement = sql.SQL(
            "INSERT INTO {images} ({cols}) SELECT {cols} FROM {table} WHERE {where} ORDER BY {key} FOR NO KEY UPDATE"
        ).format(
            images=self.images,
            cols=sql.SQL(", ").join(columns),
            table=table,
            where=where,
            key=sql.SQL(", ").join(self._cols(table)),
        )
        return statement, params

    def apply(self, bounds: Bounds) -> tuple[sql.Composable, list]:
        """The UPDATE of the batch; its rowcount is the number of rows changed."""
        table = self.target.table
        where, params = self._range(table, bounds)
        if self.mode in ("forward_capture", "rollback_images"):
            return self._apply_joined(bounds, where, params)
        if self._predicate:
            where = sql.SQL("{} AND ({})").format(where, user_sql(self._predicate))
        statement = sql.SQL("UPDATE {} SET {} WHERE {}").format(table, user_sql(self._assignments), where)
        return statement, params

    def _apply_joined(self, bounds: Bounds, where, params) -> tuple[sql.Composable, list]:
        # Join the before-image rows of this range (both sides range-restricted: two small index
        # scans). Their columns are renamed so the user's SET (`a = a + 1`) stays unambiguous.
        table = self.target.table
        alias = sql.Identifier("__bf_images")
        image_where, image_params = self._range(None, bounds)
        key_aliases = [sql.Identifier(f"__bf_k{i}") for i in range(len(self.key))]
        value_aliases = [sql.Identifier(f"__bf_v{i}") for i in range(len(self.target.set_columns))]
        selected = [
            sql.SQL("{} AS {}").format(sql.Identifier(column.name), key_alias)
            for column, key_alias in zip(self.key, key_aliases, strict=True)
        ]
        if self.mode == "rollback_images":
            selected += [
                sql.SQL("{} AS {}").format(sql.Identifier(name), value_alias)
                for name, value_alias in zip(self.target.set_columns, value_aliases, strict=True)
            ]
            assignments = sql.SQL(", ").join(
                sql.SQL("{} = {}.{}").format(sql.Identifier(name), alias, value_alias)
                for name, value_alias in zip(self.target.set_columns, value_aliases, strict=True)
            )
        else:
            assignments = user_sql(self._assignments)
        join = sql.SQL(" AND ").join(
            sql.SQL("{} = {}.{}").format(column, alias, key_alias)
            for column, key_alias in zip(self._cols(table), key_aliases, strict=True)
        )
        statement = sql.SQL("UPDATE {table} SET {set} FROM (SELECT {sel} FROM {images} WHERE {iw}) AS {alias} ").format(
            table=table,
            set=assignments,
            sel=sql.SQL(", ").join(selected),
            images=self.images,
            iw=image_where,
            alias=alias,
        ) + sql.SQL("WHERE {} AND {}").format(join, where)
        return statement, [*image_params, *params]


# Sessions waiting right now on a lock our batch holds (read just before COMMIT). The CASE keeps
# pg_blocking_pids(), which takes lock-manager locks, off every session that is not waiting.
WAITERS_SQL = """SELECT count(*) FROM pg_stat_activity
WHERE CASE WHEN wait_event_type = 'Lock' AND pid <> pg_backend_pid()
           THEN pg_backend_pid() = ANY(pg_blocking_pids(pid)) ELSE false END"""


class BatchSizer:
    """Rows per batch, steered toward `target_ms` per batch within [min, max].

    Moves halfway toward the size the last batch's rate predicts, at most ×2 / ÷2 per step, so one
    slow batch (a checkpoint, a cold cache) does not collapse the size and one fast batch does
    not double it past what the next one can take.
    """

    def __init__(self, limits: BatchLimits, start: int | None = None):
        self.limits = limits
        self.size = self._clamp(start or limits.initial)

    def _clamp(self, size: float) -> int:
        return int(max(self.limits.min, min(self.limits.max, size)))

    def observe(self, rows_scanned: int, ms: float) -> None:
        if rows_scanned < self.size:
            return  # a short (last) batch says nothing about the rate
        if not self.limits.adaptive:
            self.size = self._clamp(min(self.limits.initial, self.size * 2))  # regrow after a split
            return
        factor = max(0.5, min(2.0, self.limits.target_ms / max(ms, 0.1)))
        self.size = self._clamp(self.size * (1 + factor) / 2)

    def split(self) -> bool:
        """After a statement_timeout: halve. False when already at the minimum (it is a real failure)."""
        if self.size <= self.limits.min:
            return False
        self.size = self._clamp(self.size // 2)
        return True
