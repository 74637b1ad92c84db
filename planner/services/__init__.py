"""Use cases: the only code that changes plans, phases and runs; each checks permission and audits.

Views, Celery tasks and management commands call these functions and stay thin.
"""
