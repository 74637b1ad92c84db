"""Page speed: server-side render time of the busiest pages with 1,000 plans and 50 active runs.

    .venv/bin/python bench/pages_bench.py [--plans 1000] [--runs 50] [--iterations 200]

Creates a scratch store database (Django's test database, dropped at the end), fills it, and times
each page through Django's test client (URL routing, middleware, views, queries, templates; no
network). Prints median / p95 / max in ms and the number of SQL queries per request next to the
100 ms goal of issue 6.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planner.settings")

GOAL_MS = 100.0


def fill(plans: int, runs: int) -> dict:
    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    from planner.models import BackfillBatch, BackfillRun, BackfillSlice, Phase, Plan, TargetDatabase
    from planner.services import audit

    viewer = User.objects.create_user("bench-viewer")
    viewer.groups.add(Group.objects.get(name="viewer"))
    owner = User.objects.create_user("bench-owner")
    target = TargetDatabase.objects.create(name="bench", host="127.0.0.1", dbname="bench", username="app")
    now = timezone.now()
    made = Plan.objects.bulk_create(
        Plan(title=f"Change {n}", target=target, owner=owner, status="running" if n < runs else "scheduled")
        for n in range(plans)
    )
    phases = []
    for n, plan in enumerate(made):
        for position, kind in enumerate(("expand", "backfill", "contract"), start=1):
            phases.append(
                Phase(
                    plan=plan,
                    position=position,
                    kind=kind,
                    name=f"{kind} {n}",
                    up_sql="ALTER TABLE users ADD COLUMN v boolean;" if kind != "backfill" else "",
                    backfill_spec={"table": "users", "set": "v = true"} if kind == "backfill" else None,
                    status="succeeded" if position == 1 and n < runs else "pending",
                    not_before=now + timedelta(hours=n % 48),
                    validations=[{"name": "v exists", "sql": "SELECT 1", "expected": 1}],
                )
            )
    Phase.objects.bulk_create(phases)
    backfills = Phase.objects.filter(kind="backfill", plan__status="running").order_by("plan_id")[:runs]
    Phase.objects.filter(pk__in=[p.pk for p in backfills]).update(status="running")
    run_rows = BackfillRun.objects.bulk_create(
        BackfillRun(
            phase=phase,
            name=f"bench-{phase.pk}",
            spec=phase.backfill_spec,
            slice_count=2,
            status="running",
            rows_done=40_000,
            rows_total_estimate=200_000,
            started_at=now,
        )
        for phase in backfills
    )
    BackfillSlice.objects.bulk_create(BackfillSlice(run=run, index=i) for run in run_rows for i in range(2))
    BackfillBatch.objects.bulk_create(
        BackfillBatch(
            run=run,
            slice_index=b % 2,
            direction="forward",
            finished_at=now - timedelta(seconds=400 - b),
            rows=1000,
            duration_ms=80 + b % 20,
            batch_size=1000,
        )
        for run in run_rows
        for b in range(400)
    )
    for plan in made[:200]:
        audit.record(owner, "plan.created", plan)
    return {"viewer": viewer, "run": run_rows[0], "plan": made[0]}


def measure(client, url: str, iterations: int, **headers) -> tuple[list[float], int]:
    from django.db import connection

    client.get(url, **headers)  # warm the template cache
    count = []
    with connection.execute_wrapper(lambda execute, *args: count.append(1) or execute(*args)):
        response = client.get(url, **headers)
    assert response.status_code == 200, (url, response.status_code)
    timings = []
    for _ in range(iterations):
        start = time.perf_counter()
        client.get(url, **headers)
        timings.append((time.perf_counter() - start) * 1000)
    return timings, len(count)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plans", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()

    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.DEBUG = False
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        started = time.perf_counter()
        objects = fill(args.plans, args.runs)
        print(f"filled {args.plans} plans, {args.runs} active runs in {time.perf_counter() - started:.1f} s")
        client = Client()
        client.force_login(objects["viewer"])
        run, plan = objects["run"], objects["plan"]
        pages = [
            ("plan list (first page, 50 rows)", "/", {}),
            ("plan list, search", "/?q=Change+99", {}),
            ("run page", f"/runs/{run.pk}/", {}),
            ("run status poll (HTMX)", f"/runs/{run.pk}/", {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "run-status"}),
            ("plan page", f"/plans/{plan.pk}/", {}),
            ("agenda (first page, 50 phases)", "/agenda/", {}),
        ]
        if os.environ.get("BENCH_PROFILE"):
            import cProfile

            cProfile.runctx("client.get(os.environ['BENCH_PROFILE'])", globals(), locals(), sort="cumtime")
            return 0
        print(f"\n{'page':32} {'median':>9} {'p95':>9} {'max':>9} {'queries':>8}  goal {GOAL_MS:.0f} ms")
        for label, url, headers in pages:
            timings, queries = measure(client, url, args.iterations, **headers)
            timings.sort()
            median = statistics.median(timings)
            p95 = timings[int(len(timings) * 0.95) - 1]
            verdict = "ok" if p95 <= GOAL_MS else "SLOW"
            print(f"{label:32} {median:8.1f}  {p95:8.1f}  {timings[-1]:8.1f}  {queries:8d}  {verdict}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
