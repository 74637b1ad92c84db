"""Importing a sqlx migrations directory as a new plan: one custom phase per migration, audited."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from planner.models import Phase, Plan, TargetDatabase
from planner.services import audit
from planner.services.permissions import require
from planner.services.plans import create_plan
from planner.sqlx.files import Migration, SqlxDirectoryError, read_directory


@dataclass
class ImportResult:
    plan: Plan
    migrations: list[Migration]
    # File name → the analyzer's summary (errors, warnings, blocking …); empty when the analyzer
    # is not installed.
    analysis: dict[str, dict] = field(default_factory=dict)


def import_directory(actor, directory: Path | str, *, target: TargetDatabase, title: str = "") -> ImportResult:
    """Read and validate every file first; then create the plan in one transaction (all or nothing)."""
    require(actor, "add_plan")
    directory = Path(directory)
    migrations = read_directory(directory)
    if not migrations:
        raise SqlxDirectoryError(directory, "no migrations found (expected <VERSION>_<description>.sql files)")
    analysis = _analyse(migrations, target)
    phases = [
        {
            "kind": Phase.Kind.CUSTOM,
            "name": f"{m.version} {m.description}"[:200],
            "up_sql": m.up.sql,
            "down_sql": m.down.sql if m.down else "",
            "sqlx_origin": {
                "version": m.version,
                "stem": m.up.path.name.removesuffix(".up.sql").removesuffix(".sql"),
                "reversible": m.reversible,
            },
        }
        for m in migrations
    ]
    first, last = migrations[0].version, migrations[-1].version
    with transaction.atomic():
        plan = create_plan(
            actor,
            title=(title or f"sqlx migrations from {directory.resolve().name}")[:200],
            target=target,
            description=f"Imported from the sqlx directory {directory}: {len(migrations)} migrations, "
            f"versions {first} to {last}.",
            phases=phases,
        )
        audit.record(
            actor,
            "plan.imported_from_sqlx",
            plan,
            directory=str(directory),
            versions=[m.version for m in migrations],
            findings={name: {k: summary[k] for k in ("errors", "warnings")} for name, summary in analysis.items()},
        )
    return ImportResult(plan=plan, migrations=migrations, analysis=analysis)


def _analyse(migrations: list[Migration], target: TargetDatabase) -> dict[str, dict]:
    try:
        from planner.services.analysis import analyze_phase_sql
        from planner.sql.analysis import analyze_text  # noqa: F401 - only: is the analyzer there?
    except ImportError:
        return {}
    result = {}
    for migration in migrations:
        for migration_file in filter(None, (migration.up, migration.down)):
            report = analyze_phase_sql(migration_file.sql, target=target, path=migration_file.path.name)
            result[migration_file.path.name] = report["summary"]
    return result
