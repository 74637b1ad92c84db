"""A Celery worker that kills itself (SIGKILL) right after a batch commits, before its progress mirror.

Fault injection for tests only: `python -m tests.integration.crashing_worker N` dies in the
on_batch callback of the N-th batch, i.e. after the target's COMMIT and before the store is told.
"""

import os
import signal
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planner.settings")
django.setup()

from planner.services import backfill_worker  # noqa: E402

CRASH_AT_BATCH = int(sys.argv.pop(1))
_original_mirror = backfill_worker._mirror
_batches = 0


def _crashing_mirror(run):
    mirror = _original_mirror(run)

    def on_batch(progress):
        global _batches
        _batches += 1
        if _batches >= CRASH_AT_BATCH:
            os.kill(os.getpid(), signal.SIGKILL)
        mirror(progress)

    return on_batch


backfill_worker._mirror = _crashing_mirror

if __name__ == "__main__":
    from planner.celery import app

    app.worker_main(
        [
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ]
    )
