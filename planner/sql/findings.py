"""A finding: one rule's verdict on one statement, with the safe rewrite when there is one."""

from __future__ import annotations


class Finding:
    """One rule's verdict on one statement. The fix SQL is rendered on first use (it costs a deparse)."""

    __slots__ = ("rule", "severity", "message", "_fix", "line", "column", "tables")

    def __init__(self, rule, severity, message, fix=None, line=0, column=0, tables=()):
        self.rule = rule
        self.severity = severity  # "error" | "warning" | "info"
        self.message = message
        self._fix = fix  # str, None, or a callable returning either
        self.line = line
        self.column = column
        self.tables = tuple(tables)  # tables the finding is about (for size-based downgrades)

    @property
    def fix(self) -> str | None:
        if callable(self._fix):
            try:
                self._fix = self._fix()
            except Exception:  # noqa: BLE001 - a fix that cannot be built must not lose the finding
                self._fix = None
        return self._fix

    @fix.setter
    def fix(self, value) -> None:
        self._fix = value

    def __repr__(self) -> str:
        return f"Finding({self.rule!r}, {self.severity!r}, {self.message!r}, line={self.line}, column={self.column})"

    def to_dict(self) -> dict:
        return {"rule": self.rule, "severity": self.severity, "message": self.message, "fix": self.fix}
