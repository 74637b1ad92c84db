"""The migration planner: Django project package and app (see docs/ARCHITECTURE.md for the layers).

The Celery app is loaded by PlannerConfig.ready(), not here, so pure packages such as planner.sql
import without Celery (the analyzer's command-line start-up stays short).
"""
