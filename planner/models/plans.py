"""Targets, plans and their phases."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from psycopg.conninfo import make_conninfo

from planner import credentials
from planner.models.state import StateMachineMixin


class TargetDatabase(models.Model):
    """A customer PostgreSQL server and database that plans change; reached with psycopg only."""

    class SslMode(models.TextChoices):
        DISABLE = "disable"
        PREFER = "prefer"
        REQUIRE = "require"
        VERIFY_FULL = "verify-full"

    name = models.SlugField(max_length=100, unique=True, help_text="Short name used in the CLI (--target).")
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField(default=5432)
    dbname = models.CharField("database name", max_length=255)
    username = models.CharField(max_length=255)
    password_encrypted = models.TextField(blank=True, editable=False)
    password_env_var = models.CharField(
        "password environment variable",
        max_length=255,
        blank=True,
        help_text="Name of an environment variable holding the password, instead of storing it.",
    )
    sslmode = models.CharField(max_length=20, choices=SslMode.choices, default=SslMode.PREFER)
    server_version = models.CharField(max_length=100, blank=True, editable=False)
    last_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_check_error = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<TargetDatabase {self.name}: {self.username}@{self.host}:{self.port}/{self.dbname}>"

    def clean(self) -> None:
        if self.password_env_var and self.password_encrypted:
            raise ValidationError(
                {"password_env_var": "Give either a stored password or an environment variable, not both."}
            )

    def set_password(self, raw_password: str) -> None:
        self.password_encrypted = credentials.encrypt(raw_password) if raw_password else ""

    @property
    def has_password(self) -> bool:
        return bool(self.password_encrypted or self.password_env_var)

    def _password(self) -> str | None:
        if self.password_env_var:
            value = os.environ.get(self.password_env_var)
            if value is None:
                raise credentials.CredentialsError(
                    f"target {self.name}: environment variable {self.password_env_var} is not set"
                )
            return value
        if self.password_encrypted:
            return credentials.decrypt(self.password_encrypted)
        return None

    def conninfo(self, **overrides) -> str:
        """A libpq connection string including the password: pass it to psycopg, never display it."""
        params = {
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            "user": self.username,
            "sslmode": self.sslmode,
            "application_name": "migration-planner",
            "connect_timeout": 10,
        }
        password = self._password()
        if password is not None:
            params["password"] = password
        params.update(overrides)
        return make_conninfo(**params)

    @property
    def display_dsn(self) -> str:
        """What pages may show: everything but the password."""
        return f"postgresql://{self.username}@{self.host}:{self.port}/{self.dbname}"


class Plan(StateMachineMixin, models.Model):
    """A zero-downtime schema change, made of ordered phases (expand → backfill → contract)."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"  # being written; phases may change
        SCHEDULED = "scheduled", "Scheduled"  # phases have windows; waiting for gates
        RUNNING = "running", "Running"  # a phase is executing or waiting between phases
        SUCCEEDED = "succeeded", "Succeeded"  # every phase succeeded
        FAILED = "failed", "Failed"  # a phase failed; can be retried or rolled back
        ROLLED_BACK = "rolled_back", "Rolled back"  # down SQL applied in reverse
        CANCELLED = "cancelled", "Cancelled"  # abandoned before completion

    TRANSITIONS = {
        Status.DRAFT: {Status.SCHEDULED, Status.RUNNING, Status.CANCELLED},
        Status.SCHEDULED: {Status.DRAFT, Status.RUNNING, Status.CANCELLED},
        Status.RUNNING: {Status.SUCCEEDED, Status.FAILED, Status.CANCELLED},
        Status.FAILED: {Status.RUNNING, Status.ROLLED_BACK, Status.CANCELLED},
        Status.SUCCEEDED: {Status.ROLLED_BACK},
        Status.ROLLED_BACK: {Status.DRAFT},
        Status.CANCELLED: set(),
    }

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    recipe = models.CharField(max_length=100, blank=True, help_text="The recipe that generated the plan, if any.")
    recipe_params = models.JSONField(default=dict, blank=True)
    target = models.ForeignKey(TargetDatabase, on_delete=models.PROTECT, related_name="plans")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="owned_plans"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True)
    high_risk = models.BooleanField(
        default=False, help_text="High-risk plans need approval by a release manager other than the author."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        # Every role's abilities are Django permissions; the groups are made in migration 0002.
        permissions = [
            ("schedule_plan", "Can schedule a plan's phases"),
            ("approve_plan", "Can approve a plan's gates"),
            ("start_plan", "Can start a plan's phases"),
            ("pause_run", "Can pause a running backfill"),
            ("resume_run", "Can resume a paused backfill"),
            ("cancel_run", "Can cancel a run"),
            ("rollback_run", "Can roll back a run"),
        ]

    def __str__(self) -> str:
        return self.title

    def next_phase(self) -> Phase | None:
        # Lists prefetch the open phases into `open_phases` (see views/plans.py): no query per row.
        if hasattr(self, "open_phases"):
            return self.open_phases[0] if self.open_phases else None
        return self.phases.exclude(status__in=Phase.FINISHED).order_by("position").first()


class Phase(StateMachineMixin, models.Model):
    """One step of a plan: SQL to apply (up), SQL to undo it (down), run in order."""

    class Kind(models.TextChoices):
        EXPAND = "expand", "Expand"
        BACKFILL = "backfill", "Backfill"
        CONTRACT = "contract", "Contract"
        CUSTOM = "custom", "Custom"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # not started
        RUNNING = "running", "Running"  # up SQL or backfill executing
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"  # can be retried or rolled back
        ROLLED_BACK = "rolled_back", "Rolled back"  # down SQL applied
        SKIPPED = "skipped", "Skipped"  # plan cancelled before it ran

    FINISHED = {Status.SUCCEEDED, Status.ROLLED_BACK, Status.SKIPPED}
    TRANSITIONS = {
        Status.PENDING: {Status.RUNNING, Status.SKIPPED},
        Status.RUNNING: {Status.SUCCEEDED, Status.FAILED},
        Status.FAILED: {Status.RUNNING, Status.ROLLED_BACK, Status.SKIPPED},
        Status.SUCCEEDED: {Status.ROLLED_BACK},
        Status.ROLLED_BACK: {Status.PENDING},
        Status.SKIPPED: set(),
    }

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="phases")
    position = models.PositiveIntegerField(help_text="Order within the plan, from 1.")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    name = models.CharField(max_length=200)
    up_sql = models.TextField("up SQL", blank=True)
    down_sql = models.TextField("down SQL", blank=True)
    backfill_spec = models.JSONField(
        null=True, blank=True, help_text="For backfill phases: table, key, SET, WHERE, batch options."
    )
    validations = models.JSONField(
        default=list,
        blank=True,
        help_text='Gate queries run before the next phase: [{"name", "sql", "expected"}]; each must return expected.',
    )
    runbook = models.JSONField(
        default=dict,
        blank=True,
        help_text="Rollback procedure, testing checklist, estimated duration and notes for this phase.",
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    not_before = models.DateTimeField(null=True, blank=True, db_index=True)  # UTC; beat starts it from then
    not_after = models.DateTimeField(null=True, blank=True)  # UTC; past it the phase is reported, not started
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    execution_log = models.JSONField(
        default=list, blank=True, help_text="Per statement: attempts, time waited for locks, duration, error."
    )

    # Gates (planner/services/gates.py). Approval and deployment confirmation are per phase, so a
    # release manager signs off each step of a plan that beat may start on its own.
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    needs_deploy = models.BooleanField(
        "needs the application deployed",
        default=False,
        help_text="A release manager must confirm the application version is deployed before this phase.",
    )
    deploy_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    deploy_confirmed_at = models.DateTimeField(null=True, blank=True)
    deployed_version = models.CharField(max_length=100, blank=True, help_text="The version confirmed as deployed.")
    compat_override_reason = models.TextField(
        blank=True, help_text="Why this phase may start although a deployed version's queries break on it."
    )
    compat_override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    compat_override_at = models.DateTimeField(null=True, blank=True)
    sqlx_origin = models.JSONField(
        null=True,
        blank=True,
        help_text="For a phase imported from a sqlx migration: {version, stem, reversible}, so an export writes "
        "the same file names and bytes and the target's _sqlx_migrations ledger still matches.",
    )
    validation_results = models.JSONField(
        default=list, blank=True, help_text="Last run of this phase's validations: name, ok, value, expected, error."
    )
    validated_at = models.DateTimeField(null=True, blank=True)
    window_missed_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when not_after passed before the phase started (reported, not run)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["plan", "position"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "position"], name="phase_position_unique_in_plan"),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.name} ({self.get_kind_display()})"

    @property
    def validations_passed(self) -> bool | None:
        """True/False from the last stored check; None when never checked (or nothing to check)."""
        if not self.validations:
            return True
        if not self.validation_results or len(self.validation_results) != len(self.validations):
            return None
        return all(result.get("ok") for result in self.validation_results)
