"""Split a run's key range into N slices on the first key column, each with a row estimate.

Bounds come from pg_stats' histogram when the table was analyzed (balanced even for skewed keys),
else min/max arithmetic for integer keys, else percentile_disc over the column (one scan, once).
Whatever the bounds, the first slice is open below and the last open above, so every row belongs
to exactly one slice even when the statistics are stale.
"""

from __future__ import annotations

import json

from psycopg import sql

from planner.pg.backfill.validate import INTEGER_TYPES, Target, user_sql


def plan_slices(connection, target: Target, count: int) -> list[dict]:
    """[{lo, hi, rows_estimate}] with lo exclusive / hi inclusive on the first key column (text)."""
    bounds = _boundaries(connection, target, count) if count > 1 else []
    edges = [None, *bounds, None]
    slices = [{"lo": edges[i], "hi": edges[i + 1]} for i in range(len(edges) - 1)]
    fraction = where_fraction(connection, target, target.where_sql) if target.where_sql else None
    for slice_ in slices:
        if fraction is None:
            slice_["rows_estimate"] = estimate_rows(connection, target, slice_["lo"], slice_["hi"], target.where_sql)
        else:
            in_range = estimate_rows(connection, target, slice_["lo"], slice_["hi"], None)
            slice_["rows_estimate"] = round(in_range * fraction)
    return slices


SAMPLE_ROWS = 20_000


def where_fraction(connection, target: Target, where_sql: str) -> float | None:
    """The share of rows matching WHERE, counted on a sample of the table.

    The planner's own estimate of a predicate is often far off exactly when a backfill runs: a
    column added moments ago has no statistics yet (`new_col IS NULL` is then guessed at 0.5 %
    while it matches every row). A TABLESAMPLE of about SAMPLE_ROWS rows reads a few hundred pages.
    None when the table looks empty or the sample finds no row.
    """
    reltuples = connection.execute("SELECT reltuples FROM pg_class WHERE oid = %s", [target.oid]).fetchone()[0]
    percent = 100.0 if reltuples <= SAMPLE_ROWS else max(0.01, 100.0 * SAMPLE_ROWS / reltuples)
    sample = sql.SQL("TABLESAMPLE SYSTEM ({})").format(sql.Literal(percent)) if percent < 100 else sql.SQL("")
    statement = sql.SQL("SELECT count(*) FILTER (WHERE ({})), count(*) FROM {} {}").format(
        user_sql(where_sql), target.table, sample
    )
    matching, total = connection.execute(statement).fetchone()
    if not total:
        return None
    return matching / total


def _boundaries(connection, target: Target, count: int) -> list[str]:
    column = target.key[0]
    type_sql = sql.SQL(column.type_sql)
    histogram = connection.execute(
        sql.SQL(
            """SELECT array_agg(b::text ORDER BY i) FROM pg_stats s,
                      unnest(s.histogram_bounds::text::{}[]) WITH ORDINALITY AS u(b, i)
               WHERE s.schemaname = %s AND s.tablename = %s AND s.attname = %s"""
        ).format(type_sql),
        [target.schema, target.name, column.name],
    ).fetchone()[0]
    if histogram and len(histogram) > count:
        picked = [histogram[len(histogram) * i // count] for i in range(1, count)]
    elif column.type_oid in INTEGER_TYPES:
        low, high = connection.execute(
            sql.SQL("SELECT min({0}), max({0}) FROM {1}").format(sql.Identifier(column.name), target.table)
        ).fetchone()
        if low is None:
            return []
        picked = [str(low + (high - low) * i // count) for i in range(1, count)]
    else:
        fractions = [i / count for i in range(1, count)]
        picked = connection.execute(
            sql.SQL("SELECT (percentile_disc(%s::float8[]) WITHIN GROUP (ORDER BY {}))::text[] FROM {}").format(
                sql.Identifier(column.name), target.table
            ),
            [fractions],
        ).fetchone()[0]
        if not picked or picked[0] is None:
            return []
    return _sorted_unique(connection, column.type_sql, picked)


def _sorted_unique(connection, type_sql: str, values: list[str]) -> list[str]:
    # Sort and dedupe in PostgreSQL: only it knows the type's ordering (collations, uuids, dates).
    statement = sql.SQL("SELECT array(SELECT DISTINCT v FROM unnest(%s::{}[]) v ORDER BY v)::text[]")
    return connection.execute(statement.format(sql.SQL(type_sql)), [values]).fetchone()[0]


def estimate_rows(connection, target: Target, lo: str | None, hi: str | None, where_sql: str | None) -> int:
    """The planner's row estimate (reltuples refined by the key range and WHERE) for one slice."""
    column = sql.Identifier(target.key[0].name)
    cast = sql.SQL("CAST(%s AS {})").format(sql.SQL(target.key[0].type_sql))
    parts, params = [sql.SQL("true")], []
    if lo is not None:
        parts.append(sql.SQL("{} > {}").format(column, cast))
        params.append(lo)
    if hi is not None:
        parts.append(sql.SQL("{} <= {}").format(column, cast))
        params.append(hi)
    if where_sql:
        parts.append(sql.SQL("({})").format(user_sql(where_sql)))
    statement = sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM {} WHERE {}").format(
        target.table, sql.SQL(" AND ").join(parts)
    )
    plan = connection.execute(statement, params).fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])
