"""First-run setup: the admin account and the demo target database and plan."""

import uuid

import psycopg
import pytest
from psycopg import sql

from planner.models import Plan, TargetDatabase
from planner.services import setup

pytestmark = pytest.mark.django_db


def test_the_admin_is_created_once_with_a_generated_password(monkeypatch, django_user_model):
    monkeypatch.delenv("PLANNER_ADMIN_PASSWORD", raising=False)
    created, password = setup.ensure_admin()
    assert created and len(password) >= 12
    admin = django_user_model.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    assert setup.ensure_admin() == (False, None)


def test_the_admin_password_can_come_from_the_environment(monkeypatch, django_user_model):
    monkeypatch.setenv("PLANNER_ADMIN_PASSWORD", "from-env-123456")
    assert setup.ensure_admin() == (True, None)
    assert django_user_model.objects.get(username="admin").check_password("from-env-123456")


@pytest.fixture
def demo_database(settings, pg_server_url):
    settings.PLANNER_DEMO_DATABASE = f"demo_{uuid.uuid4().hex[:8]}"
    settings.PLANNER_DEMO_USERS, settings.PLANNER_DEMO_ORDERS = 2000, 5000
    name = settings.PLANNER_DEMO_DATABASE
    yield name
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_the_demo_has_data_a_target_and_a_plan(demo_database):
    setup.ensure_admin()
    plan = setup.ensure_demo()
    assert plan.title == setup.DEMO_PLAN_TITLE
    assert [p.kind for p in plan.phases.all()] == ["expand", "backfill", "contract"]
    target = TargetDatabase.objects.get(name=setup.DEMO_TARGET)
    with psycopg.connect(target.conninfo()) as conn:
        users, orders, fks = conn.execute(
            "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM orders),"
            " (SELECT count(*) FROM pg_constraint WHERE contype = 'f')"
        ).fetchone()
    assert (users, orders, fks) == (2000, 5000, 1)
    assert setup.ensure_demo() is None, "a second run creates nothing"
    assert Plan.objects.count() == 1


def test_every_demo_statement_passes_the_analyzer_without_errors(demo_database):
    from planner.services.analysis import analyze_phase_sql

    setup.ensure_admin()
    plan = setup.ensure_demo()
    for phase in plan.phases.all():
        for text in (phase.up_sql, phase.down_sql):
            assert analyze_phase_sql(text)["summary"]["errors"] == 0, (phase.name, text)
