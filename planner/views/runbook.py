"""The runbook of a plan, as a page and as a Markdown download."""

from __future__ import annotations

from django.contrib.auth.decorators import permission_required
from django.shortcuts import get_object_or_404, render
from django.utils.text import slugify

from planner.models import Plan
from planner.services import runbook


def _context(plan_id: int) -> dict:
    plan = get_object_or_404(Plan.objects.select_related("target", "owner"), pk=plan_id)
    return {"plan": plan, "sections": runbook.build(plan)}


@permission_required("planner.view_plan", raise_exception=True)
def runbook_page(request, plan_id: int):
    return render(request, "planner/runbook.html", _context(plan_id))


@permission_required("planner.view_plan", raise_exception=True)
def runbook_markdown(request, plan_id: int):
    context = _context(plan_id)
    response = render(request, "planner/runbook.md", context, content_type="text/markdown; charset=utf-8")
    filename = f"runbook-{context['plan'].pk}-{slugify(context['plan'].title)[:60]}.md"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
