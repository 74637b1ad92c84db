"""`manage.py sqlx`: import/export plans as sqlx-cli directories; status/apply/revert on a target.

`status`, `apply` and `revert` talk to the target database only: they never touch the ORM, so no
planner store (embedded or not) is started for them.
"""

from __future__ import annotations

import json

import psycopg
from django.core.management.base import BaseCommand, CommandError

from planner.pg.connect import connect, scrub
from planner.pg.ddl import DdlError, DdlPolicy, UnsupportedStatement
from planner.pg.ddl_statements import SqlSyntaxError
from planner.sqlx.files import SqlxDirectoryError, read_directory

BAD_INPUT = 2


class Command(BaseCommand):
    help = "sqlx-cli migrations: import DIR, export PLAN_ID DIR, status/apply/revert DIR --dsn DSN."
    requires_system_checks = []  # checks would import the whole project for nothing

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        command = actions.add_parser("import", help="create a plan from a sqlx migrations directory")
        command.add_argument("directory")
        command.add_argument("--target", required=True, help="name of the target database (TargetDatabase.name)")
        command.add_argument("--title", default="", help="plan title (default: from the directory name)")
        command.add_argument("--user", help="username the plan is created as (default: the system)")

        command = actions.add_parser("export", help="write a plan's phases as sqlx migrations into DIR")
        command.add_argument("plan_id", type=int)
        command.add_argument("directory")

        for name, text in (
            ("status", "show applied / pending / modified migrations of DIR on a target"),
            ("apply", "apply pending migrations of DIR with the safe DDL executor, recorded as sqlx does"),
            ("revert", "run down files of applied migrations (the newest, or all above --target-version)"),
        ):
            command = actions.add_parser(name, help=text)
            command.add_argument("directory")
            command.add_argument("--dsn", required=True, help="target database: URL or libpq connection string")
            if name == "status":
                command.add_argument("--format", choices=("text", "json"), default="text")
            else:
                command.add_argument("--target-version", type=int)
                command.add_argument("--lock-timeout-ms", type=int, default=DdlPolicy.lock_timeout_ms)

    def handle(self, *args, **options):
        action = options["action"]
        try:
            getattr(self, f"_{action}")(options)
        except (SqlxDirectoryError, SqlSyntaxError, UnsupportedStatement, FileExistsError) as error:
            raise CommandError(str(error), returncode=BAD_INPUT) from None
        except (DdlError, psycopg.Error) as error:
            message = " ".join(str(error).split())
            raise CommandError(scrub(message, options.get("dsn") or "")) from None

    # Target-only actions: no ORM below this line's callers.

    def _status(self, options):
        migrations = read_directory(options["directory"])
        from planner.pg import sqlx_ledger

        with self._connect(options["dsn"]) as connection:
            entries = sqlx_ledger.status(connection, migrations)
        if options["format"] == "json":
            self.stdout.write(json.dumps([entry.to_dict() for entry in entries], indent=2))
            return
        for entry in entries:
            self.stdout.write(f"{entry.version}/{entry.state} {entry.description}")

    def _apply(self, options):
        self._run_ledger(options, "apply", "Applied")

    def _revert(self, options):
        self._run_ledger(options, "revert", "Reverted")

    def _run_ledger(self, options, operation: str, verb: str):
        from planner.pg import sqlx_ledger

        migrations = read_directory(options["directory"])
        policy = DdlPolicy(lock_timeout_ms=options["lock_timeout_ms"])
        with self._connect(options["dsn"], policy) as connection:
            try:
                outcomes = getattr(sqlx_ledger, operation)(
                    connection, migrations, policy=policy, target_version=options["target_version"]
                )
            except sqlx_ledger.LedgerError as error:
                raise CommandError(str(error), returncode=BAD_INPUT) from None
        for outcome in outcomes:
            self.stdout.write(f"{verb} {outcome.version}/{outcome.description} ({outcome.elapsed_ns / 1e6:.1f} ms)")
        if not outcomes:
            self.stdout.write("Nothing to apply" if operation == "apply" else "No migrations available to revert")

    def _connect(self, dsn: str, policy: DdlPolicy | None = None) -> psycopg.Connection:
        policy = policy or DdlPolicy()
        try:
            return connect(
                dsn, lock_timeout_ms=policy.lock_timeout_ms, statement_timeout_ms=policy.statement_timeout_ms
            )
        except psycopg.Error as error:
            message = " ".join(str(error).split())
            raise CommandError(f"--dsn: cannot connect: {scrub(message, dsn)}", returncode=BAD_INPUT) from None

    # Store actions: these use the ORM.

    def _import(self, options):
        from django.contrib.auth import get_user_model
        from django.core.exceptions import PermissionDenied

        from planner.models import TargetDatabase
        from planner.services.sqlx_import import import_directory

        read_directory(options["directory"])  # bad files are reported before the store is opened
        try:
            target = TargetDatabase.objects.get(name=options["target"])
        except TargetDatabase.DoesNotExist:
            message = f"--target: no target database named {options['target']!r}"
            raise CommandError(message, returncode=BAD_INPUT) from None
        user = None
        if options["user"]:
            try:
                user = get_user_model().objects.get(username=options["user"])
            except get_user_model().DoesNotExist:
                raise CommandError(f"--user: no user named {options['user']!r}", returncode=BAD_INPUT) from None
        try:
            result = import_directory(user, options["directory"], target=target, title=options["title"])
        except PermissionDenied as error:
            raise CommandError(f"--user: {error}", returncode=BAD_INPUT) from None
        for name, summary in result.analysis.items():
            if summary.get("errors") or summary.get("warnings"):
                self.stderr.write(f"{name}: {summary['errors']} errors, {summary['warnings']} warnings")
        self.stdout.write(str(result.plan.pk))

    def _export(self, options):
        from planner.models import Plan
        from planner.services.sqlx_export import NothingToExport, export_plan
        from planner.sqlx.export import ExportError

        try:
            plan = Plan.objects.get(pk=options["plan_id"])
        except Plan.DoesNotExist:
            raise CommandError(f"PLAN_ID: no plan with id {options['plan_id']}", returncode=BAD_INPUT) from None
        try:
            result = export_plan(None, plan, options["directory"])
        except (ExportError, NothingToExport) as error:
            raise CommandError(str(error), returncode=BAD_INPUT) from None
        for warning in result.warnings:
            self.stderr.write(f"warning: {warning}")
        for path in result.paths:
            self.stdout.write(str(path))
