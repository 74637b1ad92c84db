"""Every rule has a documentation page, and each page's example really triggers its rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from planner.sql.config import AnalyzeConfig
from planner.sql.rules import all_rules
from tests.sql.helpers import rules

DOCS = Path(__file__).resolve().parents[2] / "docs" / "rules"


@pytest.mark.parametrize("name", sorted(all_rules()))
def test_every_rule_has_a_page(name):
    page = DOCS / f"{name}.md"
    assert page.is_file()
    text = page.read_text()
    assert text.startswith(f"# {name}\n") and "## Why it matters" in text
    assert f"[{name}]({name}.md)" in (DOCS / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(all_rules()))
def test_the_pages_example_triggers_the_rule(name):
    match = re.search(r"## Example\n\n```sql\n(.*?)\n```", (DOCS / f"{name}.md").read_text(), re.S)
    assert match, f"{name}.md has no example"
    example = match.group(1)
    version = re.search(r"--pg-version (\d+)", example)  # an example may be about an older server
    config = AnalyzeConfig(include={name}, pg_version=int(version.group(1)) if version else None)
    assert name in rules(example, config=config)
