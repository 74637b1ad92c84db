"""The migration planner: Django project package and app (see ../DESIGN.md for the layers)."""

from planner.celery import app as celery_app

__all__ = ["celery_app"]
