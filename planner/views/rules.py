"""Documentation pages of the analyzer's rules, rendered from docs/rules/<rule>.md."""

from __future__ import annotations

import re
from pathlib import Path

import markdown
from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from django.utils.safestring import mark_safe

RULE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,80}$")


def _rules_dir() -> Path:
    return Path(settings.BASE_DIR) / "docs" / "rules"


def rule_list(request):
    names = sorted(path.stem for path in _rules_dir().glob("*.md"))
    return render(request, "planner/rule_list.html", {"names": names})


def rule_doc(request, rule: str):
    path = _rules_dir() / f"{rule}.md"
    if not RULE_NAME.match(rule) or not path.is_file():
        raise Http404(f"no documentation for rule {rule}")
    # The docs are our own files; escaping raw HTML still keeps a bad edit from injecting script.
    html = markdown.markdown(
        path.read_text(encoding="utf-8").replace("<", "&lt;"), extensions=["fenced_code", "tables"]
    )
    return render(request, "planner/rule_doc.html", {"rule": rule, "html": mark_safe(html)})  # noqa: S308
