"""Exceptions of the backfill engine, so callers can tell bad input from a lost lease from a failure."""

from __future__ import annotations


class BackfillError(Exception):
    """Base class of everything the engine raises on purpose."""


class SpecError(BackfillError):
    """The spec is wrong; raised before any row is touched. `field` names the culprit (e.g. "set")."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class LeaseLost(BackfillError):
    """Another worker claimed this slice (its generation moved on): this worker must stop writing."""


class RunNotFound(BackfillError):
    """No run with that name exists in the target's bookkeeping schema."""
