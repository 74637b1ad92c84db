"""`manage.py analyze`: lint migration SQL for locks, rewrites and scans, for CI pipelines.

Thin: parses arguments, calls planner.sql.runner, prints. Without --target it never touches the
planner's database (no system checks, no ORM), so it starts no server. With --target it reads the
target's schema, sizes and measured throughput (and with --trace runs the file on a schema-only
shadow copy of it) through planner.services.analysis.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from planner.sql.config import SUPPORTED_VERSIONS, AnalyzeConfig, ConfigError
from planner.sql.formats import FORMATS
from planner.sql.runner import run


class Command(BaseCommand):
    help = "Analyze migration SQL files: what each statement locks, rewrites and scans, and how to do it safely."
    requires_system_checks = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH", help="SQL files to analyze; - reads stdin")
        parser.add_argument(
            "--pg-version",
            type=int,
            choices=list(SUPPORTED_VERSIONS),
            help="target PostgreSQL major version (default 15, or the config file's)",
        )
        parser.add_argument("--format", choices=FORMATS, default="text", help="output format (default text)")
        parser.add_argument("--config", help="planner-analyze.toml or pyproject.toml ([tool.planner.analyze])")
        parser.add_argument(
            "--target",
            metavar="NAME",
            help="a configured target database: its schema, table sizes and measured throughput are used "
            "(tiny tables are downgraded, statements get duration estimates); its version unless --pg-version",
        )
        parser.add_argument(
            "--trace",
            action="store_true",
            help="with --target: also run the file on a schema-only shadow copy of the target (a new database "
            "on its server, dropped afterwards) and show measured locks, rewrites and scans next to predicted",
        )

    def handle(self, *args, **options):
        if options["trace"] and not options["target"]:
            raise CommandError("--trace needs --target NAME: the shadow copy is made of that target", returncode=2)
        try:
            config = AnalyzeConfig.load(options["config"]) if options["config"] else AnalyzeConfig.discover()
        except ConfigError as error:
            raise CommandError(str(error), returncode=2) from None
        pg_version, catalog, tracer = options["pg_version"], None, None
        if options["target"]:
            catalog, tracer = self._target(options["target"], options["trace"])
            pg_version = pg_version or catalog.pg_version
        try:
            outcome = run(
                options["paths"],
                fmt=options["format"],
                pg_version=pg_version,
                config=config,
                catalog=catalog,
                tracer=tracer,
            )
        except TargetProblem as problem:
            raise CommandError(str(problem), returncode=2) from None
        self.stdout.write(outcome.output, ending="")
        for problem in outcome.problems:
            self.stderr.write(f"analyze: {problem}")
        if outcome.code:
            sys.exit(outcome.code)

    def _target(self, name: str, trace: bool):
        """(Catalog, tracer or None) of the named target; exit 2 when it is unknown or unreachable."""
        from planner.services import analysis

        try:
            target = analysis.find_target(name)
            catalog, throughput = analysis.live_catalog(target)
        except analysis.TargetUnavailable as error:
            raise CommandError(str(error), returncode=2) from None
        self.stderr.write(f"analyze: target {target.name}: PostgreSQL {catalog.pg_version}; {throughput.describe()}")
        if not trace:
            return catalog, None

        def tracer(sql_text: str) -> list[dict]:
            try:
                return analysis.trace_sql(target, sql_text)
            except analysis.TargetUnavailable as error:
                raise TargetProblem(str(error)) from None

        return catalog, tracer


class TargetProblem(Exception):
    """The trace could not run (reported as bad input, exit 2)."""
