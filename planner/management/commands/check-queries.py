"""`manage.py check-queries --plan ID`: will each application version's queries work after each phase?

Thin: reads arguments, asks planner.services.compat to check the plan's recorded queries (and those
of a `.sqlx` directory given with --sqlx-dir) on a shadow copy of the target, prints the matrix.
Exit 0 when no query of a deployed version breaks after a phase still to run, 1 when one does
(unless a release manager overrode that phase), 2 on bad input. Without --sqlx-dir the result is
stored as the plan's latest check, which the phase gates read.
"""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from planner.models import ApplicationVersion, Phase, Plan
from planner.services import compat
from planner.sqlx import offline

BAD_INPUT = 2
CELL = {"ok": "ok", "warning": "ok (warnings)", "broken": "BREAKS", "error": "not checked"}


class Command(BaseCommand):
    help = "Check every application version's queries against the schema before and after each phase of a plan."

    def add_arguments(self, parser):
        parser.add_argument("--plan", type=int, required=True, metavar="ID", help="the plan to check")
        parser.add_argument(
            "--sqlx-dir",
            metavar="DIR",
            help="also check the queries of this .sqlx directory (sqlx offline data); not stored",
        )
        parser.add_argument(
            "--app-version",
            default="",
            metavar="NAME",
            help="the application version the --sqlx-dir queries belong to (default: the directory's name); "
            "they replace that version's recorded queries in this check",
        )
        parser.add_argument(
            "--app-status",
            choices=ApplicationVersion.Status.values,
            default=ApplicationVersion.Status.DEPLOYED,
            help="the --sqlx-dir version's status; only deployed versions make the check fail (default deployed)",
        )
        parser.add_argument("--format", choices=("text", "json"), default="text")

    def handle(self, *args, **options):
        try:
            plan = Plan.objects.select_related("target").get(pk=options["plan"])
        except Plan.DoesNotExist:
            raise CommandError(f"--plan: no plan with id {options['plan']}", returncode=BAD_INPUT) from None
        extra = self._extra(options) if options["sqlx_dir"] else None
        if extra is None:
            data = compat.report_data(compat.check_plan(None, plan))
        else:
            data = compat.run_check(plan, extra=extra)
        versions = list(ApplicationVersion.objects.filter(target=plan.target))
        statuses = {v.name: v.status for v in versions}
        if extra is not None:
            statuses[extra.version_name] = extra.status
        rows = compat.matrix_of(data, [ApplicationVersion(name=n, status=s) for n, s in statuses.items()])
        phases = {f"phase-{p.pk}": p for p in plan.phases.all()}
        failing = _failing(rows, phases)
        skipped = extra.problems if extra is not None else []
        if options["format"] == "json":
            self.stdout.write(
                json.dumps(
                    {
                        "plan": plan.pk,
                        "error": data.get("error", ""),
                        "boundaries": data["boundaries"],
                        "versions": rows,
                        "failing": failing,
                        "skipped": [{"file": origin, "problem": why} for origin, why in skipped],
                    },
                    indent=2,
                )
            )
        else:
            self._text(plan, data, rows, failing, skipped)
        if data.get("error"):
            raise CommandError(data["error"], returncode=BAD_INPUT)
        if failing:
            sys.exit(1)

    def _extra(self, options) -> compat.ExtraQueries:
        try:
            read = offline.read_directory(options["sqlx_dir"])
        except FileNotFoundError as error:
            raise CommandError(f"--sqlx-dir: {error}", returncode=BAD_INPUT) from None
        queries, problems = compat.checkable(read)
        if not queries and not problems:
            raise CommandError(f"--sqlx-dir: no query-*.json file in {options['sqlx_dir']}", returncode=BAD_INPUT)
        name = options["app_version"] or _dir_name(options["sqlx_dir"])
        return compat.ExtraQueries(name, options["app_status"], queries, problems)

    def _text(self, plan, data, rows, failing, problems) -> None:
        write = self.stdout.write
        write(f'Plan {plan.pk} "{plan.title}" on target {plan.target.name}, checked on a shadow copy of its schema')
        if data.get("error"):
            write(f"error: {data['error']}")
            return
        headers = ["version"] + [b["label"] for b in data["boundaries"]]
        table = [headers] + [
            [f"{row['version']} ({row['status'] or '?'}, {row['queries']} queries)"]
            + [CELL[c["state"]] + (f" {len(c['broken'])}" if c["broken"] else "") for c in row["cells"]]
            for row in rows
        ]
        widths = [max(len(line[i]) for line in table) for i in range(len(headers))]
        for line in table:
            write("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
        for boundary in data["boundaries"]:
            if boundary.get("error"):
                write(f"\n{boundary['label']}: {boundary['error']}")
        for row in rows:
            for cell in row["cells"]:
                for query in cell["broken"]:
                    name = f' "{cell["boundary"]["name"]}"' if cell["boundary"]["name"] else ""
                    write(f"\n{row['version']} breaks {_after(cell['boundary'])}{name}: {query['origin']}")
                    for reason in query["reasons"]:
                        write(f"  {reason}")
        for origin, why in problems:
            self.stderr.write(f"check-queries: skipped {origin}: {why}")
        if failing:
            write(
                f"\n{len(failing)} quer{'y' if len(failing) == 1 else 'ies'} of deployed versions break after "
                "phases still to run (exit 1)."
            )
        else:
            write("\nNo query of a deployed version breaks after a phase still to run.")


def _after(boundary: dict) -> str:
    return boundary["label"] if boundary["key"] == "before" else f"after {boundary['label']}"


def _dir_name(path: str) -> str:
    from pathlib import Path

    resolved = Path(path).resolve()
    return (resolved.parent.name if resolved.name == ".sqlx" else resolved.name) or "sqlx-dir"


def _failing(rows: list[dict], phases: dict[str, Phase]) -> list[dict]:
    """Breaks that fail the command: a deployed version, a phase not yet run and not overridden."""
    failing = []
    for row in rows:
        if row["status"] != ApplicationVersion.Status.DEPLOYED:
            continue
        for cell in row["cells"]:
            phase = phases.get(cell["boundary"]["key"])
            if phase is None or phase.status == Phase.Status.SUCCEEDED or phase.compat_override_reason:
                continue
            for query in cell["broken"]:
                failing.append({"version": row["version"], "phase": phase.position, "query": query["origin"]})
    return failing
