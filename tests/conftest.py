"""Shared fixtures: real PostgreSQL and Redis (see tests/environment.py for which ones)."""

from __future__ import annotations

import os
import uuid

import pytest


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """One test database per test session, so two sessions at once never drop each other's."""
    from pytest_django.fixtures import _set_suffix_to_test_databases

    _set_suffix_to_test_databases(suffix=f"p{os.getpid()}")


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    """Pages render without `collectstatic` having run (production uses the hashed manifest)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """Superuser URL (database `postgres`) of the real PostgreSQL server the tests use."""
    from django.conf import settings
    from psycopg.conninfo import make_conninfo

    if settings.EMBEDDED_STORE:
        from planner.embedded import EmbeddedPostgres

        server = EmbeddedPostgres(settings.DATA_ROOT)
        if server.running_pid() is None:
            server.start()
        return server.url()
    return make_conninfo(settings.DATABASE_URL, dbname="postgres")


@pytest.fixture
def target_dsn(pg_server_url) -> str:
    """A fresh, empty target database on the test server; dropped (forcibly) afterwards."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    name = f"target_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(pg_server_url, dbname=name)
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


ROLES = ("viewer", "release manager", "on-call engineer")


@pytest.fixture
def make_user(db):
    """make_user("viewer") → a user in that role's group (None: no group at all)."""
    from django.contrib.auth.models import Group, User

    def make(role: str | None, username: str | None = None):
        user = User.objects.create_user(
            username or f"{(role or 'nobody').replace(' ', '-')}-{uuid.uuid4().hex[:6]}", password="pw-for-tests-1"
        )
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def demo_target(db, pg_server_url, target_dsn):
    """A TargetDatabase pointing at a fresh real database."""
    from psycopg.conninfo import conninfo_to_dict

    from planner.models import TargetDatabase

    params = conninfo_to_dict(target_dsn)
    target = TargetDatabase(
        name=f"t-{uuid.uuid4().hex[:6]}",
        host=params.get("host", "127.0.0.1"),
        port=int(params.get("port", 5432)),
        dbname=params["dbname"],
        username=params.get("user", "postgres"),
        sslmode="disable",
    )
    target.set_password(params.get("password", ""))
    target.save()
    return target


@pytest.fixture
def plan(db, demo_target):
    from planner.models import Phase, Plan

    plan = Plan.objects.create(title="Add email verification", target=demo_target)
    Phase.objects.create(
        plan=plan, position=1, kind="expand", name="Add column", up_sql="ALTER TABLE users ADD COLUMN v boolean;"
    )
    return plan


@pytest.fixture
def backfill_phase(plan):
    """A backfill phase after an expand phase that has succeeded (so its gate is open)."""
    from planner.models import Phase

    plan.phases.update(status=Phase.Status.SUCCEEDED)
    return Phase.objects.create(
        plan=plan,
        position=2,
        kind=Phase.Kind.BACKFILL,
        name="Backfill v",
        backfill_spec={"table": "items", "set": "counter = counter + 1", "capture_before_images": True},
    )


@pytest.fixture
def backfill_run(backfill_phase, make_user):
    from planner.services import runs

    return runs.create_run(make_user("release manager"), backfill_phase, spec=backfill_phase.backfill_spec)
