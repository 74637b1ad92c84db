"""Free-form phases written by the user, checked like generated ones: they must parse and pass the analyzer.

A finding the user has weighed can be accepted in the SQL itself with `-- planner-ignore rule`.
"""

from __future__ import annotations

from planner.recipes.base import Param, PhaseDraft, PlanDraft, Recipe, RecipeError
from planner.recipes.runbook import DDL_SECONDS, runbook

KINDS = ("expand", "backfill", "contract", "custom")
FIELDS = {"kind", "name", "up_sql", "down_sql", "backfill_spec", "validations", "runbook"}

PARAMS = (
    Param("title", "Plan title", "text"),
    Param("phases", "Phases", "phases", help="Each: kind, name, up_sql, down_sql, optional validations, runbook."),
)


def _check_sql(text: str, field: str, schema) -> None:
    from planner.sql.analysis import analyze_text

    report = analyze_text(text, path=field, catalog=schema.catalog)
    for statement in report.statements:
        for finding in statement.findings:
            if finding.severity == "error":
                raise RecipeError(field, f"line {finding.line}: {finding.rule}: {finding.message}")


def validate(schema, params: dict) -> None:
    for number, phase in enumerate(params["phases"], start=1):
        where = f"phases[{number}]"
        if not isinstance(phase, dict):
            raise RecipeError(where, "must be an object with kind, name, up_sql, down_sql")
        unknown = sorted(set(phase) - FIELDS)
        if unknown:
            raise RecipeError(f"{where}.{unknown[0]}", "is not a phase field")
        if phase.get("kind") not in KINDS:
            raise RecipeError(f"{where}.kind", f"must be one of {', '.join(KINDS)}")
        if not str(phase.get("name", "")).strip():
            raise RecipeError(f"{where}.name", "is required")
        if phase["kind"] == "backfill":
            if not isinstance(phase.get("backfill_spec"), dict):
                raise RecipeError(f"{where}.backfill_spec", "is required for a backfill phase")
        elif not str(phase.get("up_sql", "")).strip():
            raise RecipeError(f"{where}.up_sql", "is required")
        for field in ("up_sql", "down_sql"):
            if str(phase.get(field, "")).strip():
                _check_sql(phase[field], f"{where}.{field}", schema)


def build(schema, params: dict) -> PlanDraft:
    phases = [
        PhaseDraft(
            kind=phase["kind"],
            name=phase["name"].strip(),
            up_sql=phase.get("up_sql", ""),
            down_sql=phase.get("down_sql", ""),
            backfill_spec=phase.get("backfill_spec"),
            validations=list(phase.get("validations", [])),
            runbook=phase.get("runbook")
            or runbook(rollback="Run the down SQL.", testing=[], seconds=DDL_SECONDS, notes=["Written by hand."]),
        )
        for phase in params["phases"]
    ]
    return PlanDraft(title=params["title"], description="Free-form phases.", phases=phases)


RECIPE = Recipe(
    name="free_form",
    title="Free-form phases",
    description="Phases written by hand, checked by the analyzer like generated ones.",
    params=PARAMS,
    validate=validate,
    build=build,
)
