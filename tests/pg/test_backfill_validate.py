"""Bad input is refused before any row is touched, with an error naming the field."""

from __future__ import annotations

import psycopg
import pytest

from planner.pg.backfill import BackfillRunner, BackfillSpec, BatchLimits, SpecError, ThrottleLimits
from tests.pg.conftest import counter_histogram


def _refused(dsn: str, field: str, **spec) -> str:
    spec.setdefault("table", "items")
    spec.setdefault("set", "counter = counter + 1")
    with pytest.raises(SpecError) as caught:
        BackfillRunner(dsn, BackfillSpec(**spec), "bad").prepare()
    assert caught.value.field == field, str(caught.value)
    assert counter_histogram(dsn) == {0: 3000}
    with psycopg.connect(dsn) as connection:  # not even the bookkeeping schema was created
        assert connection.execute("SELECT to_regnamespace('planner_bookkeeping')").fetchone()[0] is None
    return str(caught.value)


@pytest.mark.parametrize(
    ("field", "spec", "says"),
    [
        ("table", {"table": "nope"}, "does not exist"),
        ("table", {"table": "a.b.c.d"}, "not a valid table name"),
        ("set", {"set": "nope = 1"}, "'nope' does not exist"),
        ("set", {"set": "counter = nope + 1"}, 'column "nope" does not exist'),
        ("set", {"set": "counter = "}, "does not parse"),
        ("set", {"set": "counter = 1; DROP TABLE items"}, "assignments only"),
        ("set", {"set": "counter = 1 WHERE false"}, "assignments only"),
        ("set", {"set": "counter = 'x'"}, "invalid input syntax"),
        ("set", {"set": "id = id + 1"}, "part of the key"),
        ("set", {"set": "counter = 1, counter = 2"}, "twice"),
        ("where", {"where": "counter + 1"}, "boolean"),
        ("where", {"where": "nope > 1"}, 'column "nope" does not exist'),
        ("where", {"where": "true ORDER BY id"}, "single condition"),
        ("where", {"where": "true) OR (true"}, "does not parse"),
        ("key", {"key": ("kind",)}, "not unique"),
        ("key", {"key": ("note",)}, "nullable"),
        ("key", {"key": ("nope",)}, "does not exist"),
        ("batch_size", {"batch": BatchLimits(initial=5, min=10)}, "outside the bounds"),
        ("throttle.health_query", {"throttle": ThrottleLimits(health_query="DELETE FROM items")}, "one SELECT"),
        ("reverse_set", {"reverse_set": "counter = counter - nope"}, "does not exist"),
    ],
)
def test_it_refuses_bad_input_before_touching_rows(items, field, spec, says):
    assert says in _refused(items, field, **spec)


def test_it_requires_a_primary_key_or_a_given_key(items):
    with psycopg.connect(items, autocommit=True) as connection:
        connection.execute("CREATE TABLE nokey (a int NOT NULL, b int)")
    assert "no primary key" in _refused(items, "key", table="nokey", set="b = 1")


def test_it_accepts_a_unique_not_null_key_in_any_order(items):
    with psycopg.connect(items, autocommit=True) as connection:
        connection.execute("CREATE TABLE pairs (a int NOT NULL, b int NOT NULL, v int, UNIQUE (a, b))")
    runner = BackfillRunner(items, BackfillSpec(table="pairs", set="v = 1", key=("b", "a")), "pairs")
    assert runner.prepare().key == ("a", "b")  # the index's order, so ranges use the index


def test_it_refuses_to_resume_a_name_with_a_different_backfill(items):
    BackfillRunner(items, BackfillSpec(table="items", set="counter = counter + 1"), "same").prepare()
    with pytest.raises(SpecError) as caught:
        BackfillRunner(items, BackfillSpec(table="items", set="counter = counter + 2"), "same").prepare()
    assert caught.value.field == "name" and "set differs" in str(caught.value)


def test_it_emits_user_expressions_from_the_parse_tree(items):
    # A trailing comment must not swallow the SQL we put after the expression.
    spec = BackfillSpec(table="items", set="counter = counter + 1 -- a comment", where="kind = 'gift' -- another")
    runner = BackfillRunner(items, spec, "comments")
    runner.prepare()
    runner.run_foreground()
    assert counter_histogram(items) == {0: 2000, 1: 1000}


def test_spec_round_trips_through_json(items):
    spec = BackfillSpec(table="items", set="counter = 1", key=("id",), batch=BatchLimits(initial=50))
    assert BackfillSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(SpecError, match="unknown option"):
        BackfillSpec.from_dict({**spec.to_dict(), "sett": "x"})
