"""Application versions, the queries each one sends, and a plan's query-compatibility reports.

A target's application is deployed in versions; each version's queries (from sqlx offline data,
pg_stat_statements or pasted) are checked against the schema every phase of a plan leaves
(`planner/pg/compat.py`). A version marked deployed gates the phases its queries break.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from planner.models.plans import Plan, TargetDatabase


class ApplicationVersion(models.Model):
    class Status(models.TextChoices):
        PLANNED = "planned", "planned (not running yet)"
        DEPLOYED = "deployed", "deployed (running)"
        RETIRED = "retired", "retired (no instance left)"

    target = models.ForeignKey(TargetDatabase, on_delete=models.CASCADE, related_name="app_versions")
    name = models.CharField(max_length=100, help_text="As your deploys call it, e.g. app-v1 or 2024.6.1.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DEPLOYED)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["target", "name"], name="unique_version_name_per_target")]
        permissions = [("manage_versions", "Can manage application versions and their queries")]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @property
    def gates_phases(self) -> bool:
        """Only versions still running can be broken by a phase."""
        return self.status == self.Status.DEPLOYED


class AppQuery(models.Model):
    class Source(models.TextChoices):
        SQLX = "sqlx", "sqlx offline data"
        PG_STAT_STATEMENTS = "pg_stat_statements", "pg_stat_statements"
        PASTED = "pasted", "pasted"

    version = models.ForeignKey(ApplicationVersion, on_delete=models.CASCADE, related_name="queries")
    source = models.CharField(max_length=30, choices=Source.choices)
    origin = models.CharField(max_length=300, help_text="Where it came from: a file name, a queryid, a line.")
    sql = models.TextField()
    describe = models.JSONField(
        null=True, blank=True, help_text="What the application expects back (sqlx): columns, types, nullability."
    )
    query_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["version", "source", "origin"]
        constraints = [models.UniqueConstraint(fields=["version", "query_hash"], name="unique_query_per_version")]

    def __str__(self) -> str:
        return f"{self.version.name}: {self.origin}"


class CompatibilityReport(models.Model):
    """One check of every recorded query against every phase boundary of a plan."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="compat_reports")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    fingerprint = models.CharField(max_length=64, help_text="Of the phases' SQL and the queries checked.")
    boundaries = models.JSONField(default=list)
    # {query id: {"version": id, "version_name": str, "origin": str, "sql": str}}
    queries = models.JSONField(default=dict)
    # {boundary key: {query id: {"state": ok|warning|broken, "reasons": [...], "warnings": [...]}}}
    results = models.JSONField(default=dict)
    error = models.TextField(blank=True, help_text="Why the check could not run (no shadow copy, …).")

    class Meta:
        ordering = ["-created_at", "-pk"]
        get_latest_by = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"compatibility of plan {self.plan_id} at {self.created_at:%Y-%m-%d %H:%M}"
