"""A plan's runbook: everything needed to run it and undo it, as data for the page and Markdown."""

from __future__ import annotations

from dataclasses import dataclass, field

from planner.models import Phase, Plan
from planner.services.analysis import analyze_phase_sql


@dataclass
class PhaseSection:
    phase: Phase
    up_analysis: dict | None
    down_analysis: dict | None
    blocking: list[dict] = field(default_factory=list)  # statements that block, with their locks
    estimate_seconds: float | None = None


def build(plan: Plan) -> list[PhaseSection]:
    """Per phase: the safety analysis of its up and down SQL against the schema it will meet."""
    sections = []
    for phase in plan.phases.order_by("position"):
        up = analyze_phase_sql(phase.up_sql, phase=phase) if phase.up_sql.strip() else None
        down = analyze_phase_sql(phase.down_sql, phase=phase) if phase.down_sql.strip() else None
        statements = up["statements"] if up else []
        estimates = [s["estimate_seconds"] for s in statements if s["estimate_seconds"] is not None]
        sections.append(
            PhaseSection(
                phase=phase,
                up_analysis=up,
                down_analysis=down,
                blocking=[s for s in statements if s["blocking"]],
                estimate_seconds=sum(estimates) if estimates else None,
            )
        )
    return sections
