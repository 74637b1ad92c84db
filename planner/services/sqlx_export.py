"""Exporting a plan as a sqlx migrations directory (the file logic is planner/sqlx/export.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from planner.models import Plan
from planner.services import audit
from planner.sqlx.export import PhaseSql, migrations_for_phases, write_directory


class NothingToExport(ValueError):
    """The plan has no phase with SQL."""


@dataclass
class ExportResult:
    paths: list[Path]
    warnings: list[str]  # phases that could not be expressed as SQL files (backfills)


def export_plan(actor, plan: Plan, directory: Path | str) -> ExportResult:
    """Write the plan's phases as migrations into `directory`; audited. Reading needs no permission."""
    phases = [
        PhaseSql(
            position=p.position,
            name=p.name,
            kind=p.kind,
            up_sql=p.up_sql,
            down_sql=p.down_sql,
            sqlx_origin=p.sqlx_origin,
        )
        for p in plan.phases.order_by("position")
    ]
    migrations, warnings = migrations_for_phases(phases, title=plan.title)
    if not migrations:
        raise NothingToExport(f"plan {plan.pk} ({plan.title}) has no phase with SQL to export")
    paths = write_directory(directory, migrations)
    audit.record(actor, "plan.exported_to_sqlx", plan, directory=str(directory), files=[p.name for p in paths])
    return ExportResult(paths=paths, warnings=warnings)
