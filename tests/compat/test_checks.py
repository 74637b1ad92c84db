"""What breaks a query, measured on real PostgreSQL through the check of a whole plan."""

from __future__ import annotations

import json

import psycopg
import pytest

from planner.models import Phase, Plan
from planner.services import compat, gates
from planner.sqlx.offline import query_hash

pytestmark = pytest.mark.django_db


def sqlx_file(sql: str, columns: list[tuple[str, str, bool | None]], parameters=()) -> tuple[str, bytes]:
    doc = {
        "db_name": "PostgreSQL",
        "query": sql,
        "describe": {
            "columns": [{"ordinal": i, "name": n, "type_info": t} for i, (n, t, _) in enumerate(columns)],
            "parameters": {"Left": list(parameters)},
            "nullable": [nullable for _, _, nullable in columns],
        },
        "hash": query_hash(sql),
    }
    return f"query-{query_hash(sql)}.json", json.dumps(doc, indent=2).encode()


@pytest.fixture
def accounts(demo_target, target_dsn):
    with psycopg.connect(target_dsn, autocommit=True) as connection:
        connection.execute("CREATE TABLE accounts (id int PRIMARY KEY, email text NOT NULL, plan text)")
    return demo_target


@pytest.fixture
def manager(make_user):
    return make_user("release manager")


def plan_with(target, owner, *phases) -> Plan:
    plan = Plan.objects.create(title="t", target=target, owner=owner)
    for position, (up, down, status) in enumerate(phases, start=1):
        Phase.objects.create(
            plan=plan, position=position, kind="custom", name=f"p{position}", up_sql=up, down_sql=down, status=status
        )
    return plan


def states(report) -> dict[str, list[str]]:
    return {row["version"]: [c["state"] for c in row["cells"]] for row in compat.matrix_of(compat.report_data(report))}


def reasons(report, column: int) -> list[str]:
    (row,) = compat.matrix_of(compat.report_data(report))
    return [reason for query in row["cells"][column]["broken"] for reason in query["reasons"]]


def test_a_type_change_and_a_dropped_not_null_break_what_the_application_decodes(accounts, manager):
    version = compat.add_version(manager, accounts, "app-v1")
    compat.import_sqlx_files(
        manager,
        version,
        [
            sqlx_file(
                "SELECT id, email FROM accounts WHERE id = $1",
                [("id", "Int4", False), ("email", "Text", False)],
                ["Int4"],
            ),
            sqlx_file("SELECT plan FROM accounts", [("plan", "Text", True)]),
        ],
    )
    plan = plan_with(
        accounts,
        manager,
        (
            "ALTER TABLE accounts ALTER COLUMN id TYPE bigint;",
            "ALTER TABLE accounts ALTER COLUMN id TYPE int;",
            "pending",
        ),
        (
            "ALTER TABLE accounts ALTER COLUMN email DROP NOT NULL;",
            "ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;",
            "pending",
        ),
    )
    report = compat.check_plan(manager, plan)
    assert states(report) == {"app-v1": ["ok", "broken", "broken"]}
    assert reasons(report, 1) == ["column 1 (id) is now of type int8; the application decodes int4"]
    assert reasons(report, 2) == [
        "column 1 (id) is now of type int8; the application decodes int4",
        "column 2 (email) can now be NULL; the application decodes it as NOT NULL",
    ]
    (row,) = compat.matrix_of(compat.report_data(report))
    assert row["cells"][1]["broken"][0]["origin"].startswith("query-")


def test_phases_that_already_ran_are_rewound_on_the_copy(accounts, manager, target_dsn):
    """The target already has phase 1's column; the copy is taken back to before it by its down SQL."""
    with psycopg.connect(target_dsn, autocommit=True) as connection:
        connection.execute("ALTER TABLE accounts ADD COLUMN nickname text")
    version = compat.add_version(manager, accounts, "app-v2", "planned")
    compat.add_pasted(manager, version, "SELECT nickname FROM accounts WHERE id = $1")
    plan = plan_with(
        accounts,
        manager,
        ("ALTER TABLE accounts ADD COLUMN nickname text;", "ALTER TABLE accounts DROP COLUMN nickname;", "succeeded"),
        ("ALTER TABLE accounts DROP COLUMN plan;", "ALTER TABLE accounts ADD COLUMN plan text;", "pending"),
    )
    report = compat.check_plan(manager, plan)
    assert states(report) == {"app-v2": ["broken", "ok", "ok"]}
    assert reasons(report, 0) == ['column "nickname" does not exist (in accounts)']


def test_a_phase_that_does_not_apply_is_reported_and_closes_its_gate(accounts, manager):
    version = compat.add_version(manager, accounts, "app-v1")
    compat.add_pasted(manager, version, "SELECT email FROM accounts")
    plan = plan_with(
        accounts,
        manager,
        ("ALTER TABLE accounts DROP COLUMN missing;", "", "pending"),
    )
    report = compat.check_plan(manager, plan)
    assert report.boundaries[1]["error"].startswith("phase 1 (custom) does not apply on a copy of the target's schema")
    assert states(report) == {"app-v1": ["ok", "error"]}
    gate = next(g for g in gates.evaluate(plan.phases.get()) if g.key == "queries")
    assert gate.open is False and "does not apply" in gate.detail


def test_bad_files_and_queries_are_named_and_skipped_and_the_rest_checked(accounts, manager):
    version = compat.add_version(manager, accounts, "app-v1")
    good = sqlx_file("SELECT email FROM accounts", [("email", "Text", False)])
    summary = compat.import_sqlx_files(
        manager,
        version,
        [
            good,
            ("query-0000.json", b'{"db_name": "PostgreSQL", "query": '),
            sqlx_file("SELEC email FROM accounts", [("email", "Text", False)]),
        ],
    )
    assert summary.added == 1
    skipped = dict(summary.problems)
    assert skipped["query-0000.json"].startswith("not JSON")
    assert any(message.startswith("the query does not parse") for message in skipped.values())
    pasted = compat.add_pasted(manager, version, "SELECT plan FROM accounts;\nSELECT FROM WHERE;\n")
    assert pasted.added == 1 and pasted.problems[0][0] == "pasted, line 2"

    plan = plan_with(accounts, manager, ("ALTER TABLE accounts DROP COLUMN plan;", "", "pending"))
    report = compat.check_plan(manager, plan)
    assert states(report) == {"app-v1": ["ok", "broken"]}
    assert reasons(report, 1) == ['column "plan" does not exist (in accounts)']


def test_an_unreachable_target_is_stored_as_the_reports_error(accounts, manager):
    version = compat.add_version(manager, accounts, "app-v1")
    compat.add_pasted(manager, version, "SELECT email FROM accounts")
    accounts.port = 1
    accounts.save()
    plan = plan_with(accounts, manager, ("SELECT 1;", "", "pending"))
    report = compat.check_plan(manager, plan)
    assert report.error.startswith("could not make a shadow copy of the target")
    gate = next(g for g in gates.evaluate(plan.phases.get()) if g.key == "queries")
    assert gate.open is False and "the last check failed" in gate.detail


def test_no_queries_no_gate(accounts, manager):
    plan = plan_with(accounts, manager, ("ALTER TABLE accounts DROP COLUMN plan;", "", "pending"))
    assert "queries" not in [g.key for g in gates.evaluate(plan.phases.get())]


def test_changing_a_phases_sql_withdraws_its_queries_override(accounts, manager):
    from planner.models import AuditEvent
    from planner.services import plans

    plan = plan_with(accounts, manager, ("ALTER TABLE accounts DROP COLUMN plan;", "", "pending"))
    phase = plan.phases.get()
    compat.override(manager, phase, "the job that reads plan is off")
    plans.update_phase_sql(manager, phase, up_sql="ALTER TABLE accounts DROP COLUMN email;", down_sql="")
    phase.refresh_from_db()
    assert phase.compat_override_reason == "" and phase.compat_override_by is None
    assert AuditEvent.objects.get(action="phase.sql_changed").details["compat_override_withdrawn"] is True
