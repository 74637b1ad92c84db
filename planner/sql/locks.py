"""PostgreSQL's table-level lock modes, their conflicts, and what each one blocks for other sessions."""

from __future__ import annotations

from enum import IntEnum


class Lock(IntEnum):
    """Table lock modes from weakest to strongest (the order of PostgreSQL's documentation)."""

    ACCESS_SHARE = 1
    ROW_SHARE = 2
    ROW_EXCLUSIVE = 3
    SHARE_UPDATE_EXCLUSIVE = 4
    SHARE = 5
    SHARE_ROW_EXCLUSIVE = 6
    EXCLUSIVE = 7
    ACCESS_EXCLUSIVE = 8

    @property
    def label(self) -> str:
        """Spelled as the docs do: "SHARE UPDATE EXCLUSIVE"."""
        return _LABELS[self]

    @classmethod
    def from_label(cls, label: str) -> Lock:
        return cls[label.strip().upper().replace(" ", "_")]

    @classmethod
    def from_pg_locks(cls, mode: str) -> Lock | None:
        """pg_locks.mode ("ShareUpdateExclusiveLock") → the mode; None for non-table modes (SIReadLock)."""
        return _PG_LOCKS_NAMES.get(mode)


_LABELS = {mode: mode.name.replace("_", " ") for mode in Lock}
_PG_LOCKS_NAMES = {mode.name.title().replace("_", "") + "Lock": mode for mode in Lock}

# Which modes each mode conflicts with (PostgreSQL docs, "Conflicting Lock Modes" table).
CONFLICTS: dict[Lock, frozenset[Lock]] = {
    Lock.ACCESS_SHARE: frozenset({Lock.ACCESS_EXCLUSIVE}),
    Lock.ROW_SHARE: frozenset({Lock.EXCLUSIVE, Lock.ACCESS_EXCLUSIVE}),
    Lock.ROW_EXCLUSIVE: frozenset({Lock.SHARE, Lock.SHARE_ROW_EXCLUSIVE, Lock.EXCLUSIVE, Lock.ACCESS_EXCLUSIVE}),
    Lock.SHARE_UPDATE_EXCLUSIVE: frozenset(
        {Lock.SHARE_UPDATE_EXCLUSIVE, Lock.SHARE, Lock.SHARE_ROW_EXCLUSIVE, Lock.EXCLUSIVE, Lock.ACCESS_EXCLUSIVE}
    ),
    Lock.SHARE: frozenset(
        {
            Lock.ROW_EXCLUSIVE,
            Lock.SHARE_UPDATE_EXCLUSIVE,
            Lock.SHARE_ROW_EXCLUSIVE,
            Lock.EXCLUSIVE,
            Lock.ACCESS_EXCLUSIVE,
        }
    ),
    Lock.SHARE_ROW_EXCLUSIVE: frozenset(
        {
            Lock.ROW_EXCLUSIVE,
            Lock.SHARE_UPDATE_EXCLUSIVE,
            Lock.SHARE,
            Lock.SHARE_ROW_EXCLUSIVE,
            Lock.EXCLUSIVE,
            Lock.ACCESS_EXCLUSIVE,
        }
    ),
    Lock.EXCLUSIVE: frozenset(set(Lock) - {Lock.ACCESS_SHARE}),
    Lock.ACCESS_EXCLUSIVE: frozenset(Lock),
}

SELECT = "SELECT"
WRITES = "INSERT/UPDATE/DELETE"
DDL = "DDL"

# The lock each kind of concurrent operation needs. DDL is represented by the weakest DDL lock
# (SHARE UPDATE EXCLUSIVE: VACUUM, ANALYZE, CREATE INDEX CONCURRENTLY, most ALTER TABLE need at least
# that much or ACCESS EXCLUSIVE, which conflicts with everything).
_OPERATION_LOCK = {SELECT: Lock.ACCESS_SHARE, WRITES: Lock.ROW_EXCLUSIVE}


def _blocked(mode: Lock) -> tuple[str, ...]:
    blocked = [op for op, needed in _OPERATION_LOCK.items() if needed in CONFLICTS[mode]]
    # Every lock conflicts with ACCESS EXCLUSIVE DDL, so some DDL is always blocked.
    return (*blocked, DDL)


_BLOCKS = {mode: _blocked(mode) for mode in Lock}


def blocks(mode: Lock) -> list[str]:
    """Concurrent operations that wait while `mode` is held, in a fixed order."""
    return list(_BLOCKS[mode])


def stronger(a: Lock | None, b: Lock) -> Lock:
    return b if a is None or b > a else a
