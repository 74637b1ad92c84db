"""Row estimates of a run: the WHERE share is sampled, not guessed from missing statistics."""

import psycopg
import pytest

from planner.pg.backfill.runner import BackfillRunner
from tests.pg.conftest import make_items


@pytest.fixture
def big_items(target_dsn):
    make_items(target_dsn, 60_000)
    with psycopg.connect(target_dsn, autocommit=True) as connection:
        # Just added: no statistics, so PostgreSQL guesses `verified IS NULL` matches 0.5 % of rows.
        connection.execute("ALTER TABLE items ADD COLUMN verified boolean")
    return target_dsn


@pytest.mark.parametrize("slices", [1, 3])
def test_a_new_columns_is_null_is_estimated_from_a_sample(big_items, slices):
    spec = {"table": "items", "set": "verified = true", "where": "verified IS NULL"}
    info = BackfillRunner(big_items, spec, f"estimate-{slices}").prepare(slices=slices)
    assert 54_000 <= info.rows_estimate <= 66_000


def test_a_selective_where_is_estimated_by_its_share(big_items):
    spec = {"table": "items", "set": "counter = 1", "where": "kind = 'gift'"}  # every third row
    info = BackfillRunner(big_items, spec, "estimate-gift").prepare()
    assert 16_000 <= info.rows_estimate <= 24_000
