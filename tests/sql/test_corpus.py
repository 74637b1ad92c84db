"""The analyzer agrees with PostgreSQL on every statement of the measured corpus.

For each case of `tests/sql/corpus/cases.py` and each PostgreSQL major it was measured on
(`measured.json`, written by `python -m tests.sql.corpus.measure`), the analyzer — given the case's
setup as the pre-existing schema — must predict the same strongest lock per pre-existing table or
view, the same rewritten and fully scanned tables, and the same `blocking` verdict. No server is
needed: the measurements are data.
"""

from __future__ import annotations

import json

import pytest

from tests.sql.corpus.cases import CASES, Case
from tests.sql.corpus.measure import MEASURED_PATH

MEASURED = json.loads(MEASURED_PATH.read_text())
LABELS = sorted(MEASURED["servers"], key=int)


def _params():
    for case in CASES:
        for label in LABELS:
            if case.runs_on(int(label)):
                yield pytest.param(case, label, id=f"{case.id}-pg{label}")


def test_corpus_is_big_enough_and_measured_on_both_majors():
    assert len(CASES) >= 80
    assert {"15", "18"} <= set(LABELS)


@pytest.mark.parametrize(("case", "label"), list(_params()))
def test_measurement_is_current(case: Case, label: str):
    measured = MEASURED["cases"].get(case.id, {}).get(label)
    assert measured is not None, f"{case.id} was never measured on PostgreSQL {label}: run tests.sql.corpus.measure"
    assert measured["fingerprint"] == case.fingerprint, (
        f"{case.id} changed since it was measured on PostgreSQL {label}: run tests.sql.corpus.measure"
    )


def predict(case: Case, label: str) -> dict:
    from planner.sql.analysis import analyze_text
    from planner.sql.catalog import Catalog

    version = int(label)
    catalog = Catalog.from_sql(case.setup, pg_version=version)
    report = analyze_text(case.statement, path=f"{case.id}.sql", pg_version=version, catalog=catalog)
    statement = report.statements[0]
    return {
        "locks": dict(statement.locks),
        "rewrites": sorted(statement.rewrites),
        "scans": sorted(statement.scans),
        "blocking": bool(statement.blocking),
    }


@pytest.mark.parametrize(("case", "label"), list(_params()))
def test_analyzer_agrees_with_postgresql(case: Case, label: str):
    measured = MEASURED["cases"][case.id][label]
    expected = {
        "locks": measured["locks"],
        "rewrites": sorted(measured["rewrites"]),
        "scans": sorted(measured["scans"]),
        "blocking": measured["blocking"],
    }
    predicted = predict(case, label)
    differences = {
        key: {"measured": expected[key], "predicted": predicted[key]}
        for key in expected
        if expected[key] != predicted[key]
    }
    assert not differences, f"{case.id} on PostgreSQL {label}: {case.statement}\n{json.dumps(differences, indent=1)}"
