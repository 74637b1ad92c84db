"""URL routes. Every page requires login (LoginRequiredMiddleware) except login and /healthz."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from planner.views import audit, compat, health, phases, plans, recipes, rules, runbook, runs, schedule

urlpatterns = [
    path("", plans.plan_list, name="plan-list"),
    path("plans/new/", recipes.plan_new, name="plan-new"),
    path("plans/<int:plan_id>/", plans.plan_detail, name="plan-detail"),
    path("plans/<int:plan_id>/runbook/", runbook.runbook_page, name="runbook"),
    path("plans/<int:plan_id>/runbook.md", runbook.runbook_markdown, name="runbook-markdown"),
    path("runs/<int:run_id>/", runs.run_detail, name="run-detail"),
    path("runs/<int:run_id>/<str:action>/", runs.run_action, name="run-action"),
    path("phases/<int:phase_id>/start-backfill/", runs.start_backfill, name="start-backfill"),
    path("phases/<int:phase_id>/edit/", phases.phase_edit, name="phase-edit"),
    path("phases/<int:phase_id>/run/", phases.phase_run, name="phase-run"),
    path("phases/<int:phase_id>/rollback/", phases.phase_rollback, name="phase-rollback"),
    path("phases/<int:phase_id>/analyze/", phases.analyze_preview, name="analyze-preview"),
    path("phases/<int:phase_id>/trace/", phases.phase_trace, name="phase-trace"),
    path("phases/<int:phase_id>/schedule/", schedule.phase_schedule, name="phase-schedule"),
    path("phases/<int:phase_id>/approve/", schedule.phase_approve, name="phase-approve"),
    path("phases/<int:phase_id>/withdraw-approval/", schedule.phase_withdraw_approval, name="phase-withdraw-approval"),
    path("phases/<int:phase_id>/confirm-deploy/", schedule.phase_confirm_deploy, name="phase-confirm-deploy"),
    path("phases/<int:phase_id>/check-validations/", schedule.phase_check_validations, name="phase-check-validations"),
    path("plans/<int:plan_id>/check-queries/", compat.plan_check_queries, name="plan-check-queries"),
    path("phases/<int:phase_id>/override-compatibility/", compat.phase_override_compat, name="phase-override-compat"),
    path(
        "phases/<int:phase_id>/withdraw-compat-override/",
        compat.phase_withdraw_compat_override,
        name="phase-withdraw-compat-override",
    ),
    path("targets/<int:target_id>/versions/", compat.target_versions, name="target-versions"),
    path("targets/<int:target_id>/versions/add/", compat.version_add, name="version-add"),
    path("versions/<int:version_id>/status/", compat.version_status, name="version-status"),
    path("versions/<int:version_id>/sqlx/", compat.version_upload_sqlx, name="version-upload-sqlx"),
    path("versions/<int:version_id>/paste/", compat.version_paste, name="version-paste"),
    path(
        "versions/<int:version_id>/stat-statements/",
        compat.version_import_stat_statements,
        name="version-import-stat-statements",
    ),
    path("queries/<int:query_id>/delete/", compat.query_delete, name="query-delete"),
    path("agenda/", schedule.agenda, name="agenda"),
    path("rules/", rules.rule_list, name="rule-list"),
    path("rules/<str:rule>/", rules.rule_doc, name="rule-doc"),
    path("audit/", audit.audit_log, name="audit-log"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", health.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
