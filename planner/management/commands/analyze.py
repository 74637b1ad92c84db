"""`manage.py analyze`: lint migration SQL for locks, rewrites and scans, for CI pipelines.

Thin: parses arguments, calls planner.sql.runner, prints. Never touches the planner's database
(no system checks, no ORM), so it starts no server.
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
        parser.add_argument("--target", help="a configured target database (not available yet)")

    def handle(self, *args, **options):
        if options["target"]:
            raise CommandError("--target is not available yet: analysis runs offline only", returncode=2)
        try:
            config = AnalyzeConfig.load(options["config"]) if options["config"] else AnalyzeConfig.discover()
        except ConfigError as error:
            raise CommandError(str(error), returncode=2) from None
        outcome = run(options["paths"], fmt=options["format"], pg_version=options["pg_version"], config=config)
        self.stdout.write(outcome.output, ending="")
        for problem in outcome.problems:
            self.stderr.write(f"analyze: {problem}")
        if outcome.code:
            sys.exit(outcome.code)
