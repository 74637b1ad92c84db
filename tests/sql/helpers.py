"""Small helpers shared by the analyzer tests."""

from __future__ import annotations

from planner.sql.analysis import analyze_text
from planner.sql.catalog import Catalog


def findings(sql: str, **kwargs) -> list:
    return analyze_text(sql, **kwargs).findings()


def rules(sql: str, **kwargs) -> set[str]:
    return {f.rule for f in findings(sql, **kwargs)}


def fired(rule: str, sql: str, **kwargs) -> bool:
    return rule in rules(sql, **kwargs)


def finding(rule: str, sql: str, **kwargs):
    matches = [f for f in findings(sql, **kwargs) if f.rule == rule]
    assert matches, f"{rule} did not fire on: {sql}"
    return matches[0]


def sized(rows: int, size: int, setup: str = "create table t (id bigint primary key, c text, n int);") -> Catalog:
    catalog = Catalog.from_sql(setup)
    for table in catalog.tables.values():
        table.rows, table.bytes = rows, size
    return catalog
