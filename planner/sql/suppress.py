"""Inline suppressions: `-- planner-ignore rule-a, rule-b` before a statement, `-- planner-ignore-file rule`."""

from __future__ import annotations

import re

_STATEMENT = re.compile(r"planner-ignore(?!-file)\s*:?\s*([\w\-, ]*)", re.IGNORECASE)
_FILE = re.compile(r"planner-ignore-file\s*:?\s*([\w\-, ]*)", re.IGNORECASE)
ALL = "all"


def _rules(text: str) -> set[str]:
    names = {part.strip().lower() for part in re.split(r"[,\s]+", text) if part.strip()}
    return names or {ALL}


def statement_ignores(comments: list[str]) -> set[str]:
    """Rules the comments right before a statement silence (`all` when none are named)."""
    found: set[str] = set()
    for comment in comments:
        for match in _STATEMENT.finditer(comment):
            found |= _rules(match.group(1))
    return found


def file_ignores(comments: list[str]) -> set[str]:
    found: set[str] = set()
    for comment in comments:
        for match in _FILE.finditer(comment):
            found |= _rules(match.group(1))
    return found


def silenced(rule: str, ignores: set[str]) -> bool:
    return ALL in ignores or rule in ignores
