"""A rename-column plan checked against two application versions' sqlx queries on real PostgreSQL.

app-v1 reads and writes users.name, app-v2 users.full_name (tests/compat/samples/*/.sqlx, in sqlx's
own format). The old version works at expand and backfill and breaks at the contract; the gate holds
the contract until app-v1 is retired (or a release manager overrides it); app-v2 works from the
switch on.
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from planner.models import AuditEvent
from planner.services import compat, gates

pytestmark = pytest.mark.django_db


@pytest.fixture
def rename(driver_for, demo_target, make_user, sample_dir):
    driver = driver_for("rename_column", {"table": "users", "column": "name", "new_name": "full_name"})
    manager = driver.manager
    v1 = compat.add_version(manager, demo_target, "app-v1", "deployed")
    v2 = compat.add_version(manager, demo_target, "app-v2", "planned")
    compat.import_sqlx_directory(manager, v1, sample_dir("app-v1"))
    compat.import_sqlx_directory(manager, v2, sample_dir("app-v2"))
    return driver, v1, v2


def cells(report, version: str) -> list[str]:
    row = next(r for r in compat.matrix_of(compat.report_data(report)) if r["version"] == version)
    return [cell["state"] for cell in row["cells"]]


def test_old_version_breaks_at_contract_and_new_one_works_from_the_switch(rename):
    driver, v1, v2 = rename
    assert [p.kind for p in driver.phases()] == ["expand", "backfill", "contract"]
    report = compat.check_plan(driver.manager, driver.plan)
    assert report.error == ""
    assert [b["label"] for b in report.boundaries] == [
        "before the plan",
        "phase 1 (expand)",
        "phase 2 (backfill)",
        "phase 3 (contract)",
    ]
    assert cells(report, "app-v1") == ["ok", "ok", "ok", "broken"]
    assert cells(report, "app-v2") == ["broken", "ok", "ok", "ok"]
    row = next(r for r in compat.matrix_of(compat.report_data(report)) if r["version"] == "app-v1")
    broken = row["cells"][3]["broken"]
    assert len(broken) == 3  # the select, the insert and the update of name; not the orders query
    assert all(q["origin"].startswith("query-") and q["origin"].endswith(".json") for q in broken)
    assert {q["reasons"][0] for q in broken} == {'column "name" does not exist (in users)'} | {
        'column "name" of relation "users" does not exist'
    }


def test_gate_holds_the_contract_until_the_old_version_is_retired(rename):
    driver, v1, v2 = rename
    compat.check_plan(driver.manager, driver.plan)
    expand, backfill, contract = driver.phases()
    assert [g.key for g in gates.evaluate(backfill)].count("queries") == 0  # backfills change no schema
    assert next(g for g in gates.evaluate(expand) if g.key == "queries").open is True

    driver.run(expand)
    driver.run(backfill)
    contract.refresh_from_db()
    gate = next(g for g in gates.evaluate(contract) if g.key == "queries")
    assert gate.open is False and "app-v1 (deployed) break after this phase" in gate.detail
    assert 'column "name"' in gate.detail
    assert any("app-v1" in reason for reason in gates.failures(contract, actor=driver.manager, live=False))

    compat.set_version_status(driver.manager, v2, "deployed")
    compat.set_version_status(driver.manager, v1, "retired", reason="last v1 pod gone")
    contract.refresh_from_db()
    contract.plan._compat_state = None
    gate = next(g for g in gates.evaluate(contract) if g.key == "queries")
    assert gate.open is True and "app-v2" in gate.detail
    driver.run(contract)
    assert AuditEvent.objects.filter(action="version.retired", details__reason="last v1 pod gone").exists()


def test_an_override_with_a_reason_opens_the_gate_and_is_audited(rename, make_user):
    driver, v1, v2 = rename
    compat.check_plan(driver.manager, driver.plan)
    contract = driver.phases()[2]
    with pytest.raises(compat.CompatError, match="reason"):
        compat.override(driver.manager, contract, "  ")
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        compat.override(make_user("on-call engineer"), contract, "because")
    compat.override(driver.manager, contract, "v1 only reads name in a job we disabled")
    contract.refresh_from_db()
    gate = next(g for g in gates.evaluate(contract) if g.key == "queries")
    assert gate.open is True and "v1 only reads name" in gate.detail
    event = AuditEvent.objects.get(action="phase.compatibility_overridden")
    assert event.details["breaking"] and event.actor == driver.manager


def test_a_changed_phase_makes_the_report_stale(rename):
    driver, v1, v2 = rename
    compat.check_plan(driver.manager, driver.plan)
    contract = driver.phases()[2]
    contract.up_sql += "\nSELECT 1;"
    contract.save()
    gate = next(g for g in gates.evaluate(contract) if g.key == "queries")
    assert gate.open is False and "changed since the last check" in gate.detail


def test_check_queries_command(rename, sample_dir, tmp_path):
    driver, v1, v2 = rename
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("check-queries", "--plan", str(driver.plan.pk), stdout=out)
    assert exit_info.value.code == 1
    text = out.getvalue()
    assert "app-v1 breaks after phase 3 (contract)" in text and 'column "name" does not exist' in text
    assert "app-v1 (deployed, 5 queries)" in text

    compat.set_version_status(driver.manager, v1, "retired")
    out = StringIO()
    call_command("check-queries", "--plan", str(driver.plan.pk), "--format", "json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["failing"] == []
    assert [c["state"] for c in data["versions"][1]["cells"]] == ["broken", "ok", "ok", "ok"]

    # A .sqlx directory given on the command line is checked too, without being stored.
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command(
            "check-queries", "--plan", str(driver.plan.pk), "--sqlx-dir", str(sample_dir("app-v1")), stdout=out
        )
    assert exit_info.value.code == 1 and "app-v1 (deployed" in out.getvalue()
