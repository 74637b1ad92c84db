from django.apps import AppConfig


class PlannerConfig(AppConfig):
    name = "planner"
    verbose_name = "Migration planner"

    def ready(self) -> None:
        # Binds @shared_task to our app (broker from settings) in every Django process: web, worker, commands.
        from planner.celery import app  # noqa: F401
