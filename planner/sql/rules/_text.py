"""Shared wording for rule messages: what a lock blocks and for how long."""

from __future__ import annotations

from planner.sql.locks import Lock, blocks


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def blocked(ctx, table: str) -> str:
    """e.g. "holds ACCESS EXCLUSIVE on users, blocking SELECT, INSERT/UPDATE/DELETE and DDL"."""
    mode = ctx.effect.locks.get(table)
    if mode is None:
        return f"locks {table}"
    ops = ctx.statement.blocks.get(table) or blocks(mode)
    return f"holds {mode.label} on {table}, blocking {_join(ops)}"


def duration(ctx, table: str) -> str:
    """How long the lock is held: a rewrite or a scan grows with the table."""
    seconds = ctx.statement.estimate_seconds
    estimate = f" (about {seconds:g} s on the target)" if seconds else ""
    if table in ctx.effect.rewrites:
        return f"while it rewrites the whole table and its indexes, a time that grows with the table{estimate}"
    if table in ctx.effect.scans:
        return f"while it scans the whole table, a time that grows with the table{estimate}"
    return "only briefly, but it queues behind every running transaction on the table and everything queues behind it"


def heavy(ctx, table: str) -> bool:
    return table in ctx.effect.rewrites or table in ctx.effect.scans


def at_least(ctx, table: str, mode: Lock) -> bool:
    held = ctx.effect.locks.get(table)
    return held is not None and held >= mode
