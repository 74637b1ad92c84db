"""First-run setup used by `manage.py up`: the admin account and the demo target and plan."""

from __future__ import annotations

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from psycopg.conninfo import make_conninfo

from planner.models import Phase, Plan, TargetDatabase
from planner.pg import demo
from planner.services import audit

DEMO_TARGET = "demo"
DEMO_PLAN_TITLE = "Add email verification to users"


def ensure_admin() -> tuple[bool, str | None]:
    """Create the `admin` superuser when no user exists.

    Returns (created, generated password): the password only when we made it up, to print once.
    """
    User = get_user_model()
    if User.objects.exists():
        return False, None
    given = os.environ.get("PLANNER_ADMIN_PASSWORD")
    password = given or secrets.token_urlsafe(12)
    user = User.objects.create_superuser("admin", email="", password=password)
    audit.record(None, "user.created", user, reason="first run")
    return True, None if given else password


def _store_server_params() -> dict:
    params = connection.get_connection_params()
    return {key: params[key] for key in ("host", "port", "user", "password") if params.get(key)}


@transaction.atomic
def _create_demo_objects(server: dict) -> Plan:
    target = TargetDatabase(
        name=DEMO_TARGET,
        host=server.get("host", "127.0.0.1"),
        port=int(server.get("port", 5432)),
        dbname=settings.PLANNER_DEMO_DATABASE,
        username=server.get("user", "postgres"),
        sslmode=TargetDatabase.SslMode.PREFER,
    )
    target.set_password(server.get("password", ""))
    target.save()
    owner = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
    plan = Plan.objects.create(
        title=DEMO_PLAN_TITLE,
        description=(
            "Demo: add users.email_verified without blocking the application — a nullable column first, "
            "a batched backfill, then NOT NULL through a validated CHECK constraint."
        ),
        target=target,
        owner=owner,
    )
    phases = [
        dict(
            kind=Phase.Kind.EXPAND,
            name="Add nullable column",
            up_sql="ALTER TABLE users ADD COLUMN email_verified boolean;",
            down_sql="ALTER TABLE users DROP COLUMN email_verified;",
        ),
        dict(
            kind=Phase.Kind.BACKFILL,
            name="Backfill email_verified from confirmed_at",
            backfill_spec={
                "table": "users",
                "key": ["id"],
                "set": "email_verified = (confirmed_at IS NOT NULL)",
                "where": "email_verified IS NULL",
                "capture_before_images": True,
            },
        ),
        dict(
            kind=Phase.Kind.CONTRACT,
            name="Make email_verified NOT NULL",
            up_sql=(
                "ALTER TABLE users ADD CONSTRAINT users_email_verified_not_null "
                "CHECK (email_verified IS NOT NULL) NOT VALID;\n"
                "ALTER TABLE users VALIDATE CONSTRAINT users_email_verified_not_null;\n"
                "ALTER TABLE users ALTER COLUMN email_verified SET NOT NULL;\n"
                "ALTER TABLE users DROP CONSTRAINT users_email_verified_not_null;\n"
                "ALTER TABLE users ALTER COLUMN email_verified SET DEFAULT false;"
            ),
            down_sql=(
                "ALTER TABLE users ALTER COLUMN email_verified DROP DEFAULT;\n"
                "ALTER TABLE users ALTER COLUMN email_verified DROP NOT NULL;"
            ),
        ),
    ]
    for position, phase in enumerate(phases, start=1):
        Phase.objects.create(plan=plan, position=position, **phase)
    audit.record(None, "plan.created", plan, reason="demo")
    return plan


def ensure_demo() -> Plan | None:
    """Create the demo database (on the store's server) and its target and plan, once."""
    if TargetDatabase.objects.filter(name=DEMO_TARGET).exists():
        return None
    server = _store_server_params()
    server_conninfo = make_conninfo(dbname="postgres", **server)
    if not demo.database_exists(server_conninfo, settings.PLANNER_DEMO_DATABASE):
        demo.create_demo_database(
            server_conninfo,
            settings.PLANNER_DEMO_DATABASE,
            users=settings.PLANNER_DEMO_USERS,
            orders=settings.PLANNER_DEMO_ORDERS,
        )
    return _create_demo_objects(server)
