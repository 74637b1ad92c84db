"""The rule registry: each rule module registers its checks with `@rule`; `run_rules` runs them.

A rule reads one statement's parse tree, the lock model's effect and the file state, and reports
findings through `ctx.report`. Rules that are about lock *duration* are `size_sensitive`: with table
sizes known, their findings on tiny tables are downgraded to info. Documentation: docs/rules/<name>.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from planner.sql.findings import Finding
from planner.sql.locks import Lock


@dataclass(frozen=True)
class Rule:
    name: str
    severity: str
    summary: str
    check: Callable
    kinds: tuple[str, ...] = ()  # statement kinds the rule looks at; empty = all
    size_sensitive: bool = False
    default_enabled: bool = True


RULES: dict[str, Rule] = {}


def rule(name: str, severity: str, summary: str, *, kinds=(), size_sensitive=False, default_enabled=True):
    def register(check):
        RULES[name] = Rule(name, severity, summary, check, tuple(kinds), size_sensitive, default_enabled)
        return check

    return register


@dataclass
class Context:
    """What a rule sees for one statement."""

    node: object
    statement: object  # StatementReport
    effect: object  # model.Effect
    state: object  # model.FileState (after the statement)
    file: object  # analysis.FileContext
    rule: Rule | None = None
    found: list = field(default_factory=list)

    @property
    def pg_version(self) -> int:
        return self.state.pg_version

    @property
    def in_transaction(self) -> bool:
        """Whether this statement runs inside a transaction block."""
        return self.state.in_transaction_block or not self.file.no_transaction

    def is_new(self, key: str) -> bool:
        """Created earlier in this file (the state is read after the statement, so ask the effect too)."""
        return key in self.effect.new_tables or self.state.is_new(key)

    def report(self, message: str, fix: str | None = None, tables=(), severity: str | None = None) -> None:
        self.found.append(Finding(self.rule.name, severity or self.rule.severity, message, fix, tables=tuple(tables)))

    def strongest(self, table: str) -> Lock | None:
        return self.effect.locks.get(table)


def run_rules(node, statement, effect, state, file_context) -> list:
    _load()
    ctx = Context(node, statement, effect, state, file_context)
    kind = type(node).__name__
    config = file_context.config
    for current in _rules_for(kind):
        # Disabled rules still run and are filtered below, so the `blocking-statement` safety net
        # knows the statement was explained (and does not re-report what the user chose to accept).
        ctx.rule = current
        try:
            current.check(ctx)
        except Exception as error:  # noqa: BLE001 - one broken rule must not hide the other findings
            ctx.found.append(
                Finding("analyzer-error", "info", f"rule {current.name} failed on this statement: {error!r}")
            )
    return [f for f in ctx.found if f.rule not in RULES or config.enabled(f.rule, RULES[f.rule].default_enabled)]


_loaded = False
_BY_KIND: dict[str, list[Rule]] = {}


def _rules_for(kind: str) -> list[Rule]:
    """Rules that look at this statement kind, in registration order (cached: it runs per statement)."""
    found = _BY_KIND.get(kind)
    if found is None:
        found = _BY_KIND[kind] = [r for r in RULES.values() if not r.kinds or kind in r.kinds]
    return found


def _load() -> None:
    global _loaded
    if not _loaded:
        from planner.sql.rules import (  # noqa: F401 - imported for their @rule registrations
            columns,
            constraints,
            drops,
            indexes,
            locking,
            timeouts,
            types,
            versions,
        )

        _loaded = True


def all_rules() -> dict[str, Rule]:
    _load()
    return RULES
