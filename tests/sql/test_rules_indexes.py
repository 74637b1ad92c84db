"""Index rules: concurrent creation/deletion, and CONCURRENTLY outside transactions."""

from __future__ import annotations

import pytest

from tests.sql.helpers import finding, fired

NO_TX = "-- no-transaction\n"


class TestRequireConcurrentIndexCreation:
    @pytest.mark.parametrize(
        "sql",
        [
            "create index on t (c)",
            "create unique index t_c on t (c)",
            "create index t_c on public.t using gin (c)",
            "create index t_c on t (lower(c)) where c is not null",
        ],
    )
    def test_it_fires(self, sql):
        assert fired("require-concurrent-index-creation", sql)

    @pytest.mark.parametrize(
        "sql",
        [
            NO_TX + "create index concurrently on t (c)",
            "create table t (c int); create index on t (c)",
            NO_TX + "create unique index concurrently if not exists t_c on t (c)",
        ],
    )
    def test_it_passes(self, sql):
        assert not fired("require-concurrent-index-creation", sql)

    def test_the_fix_is_a_concurrent_build_in_its_own_no_transaction_migration(self):
        fix = finding("require-concurrent-index-creation", 'create index "My Idx" on "Big Table" (c)').fix
        assert fix == (
            "-- migration 1 of 1: build the index without blocking writes\n"
            "-- no-transaction\n"
            'CREATE INDEX CONCURRENTLY "My Idx" ON "Big Table" (c);'
        )

    def test_the_message_says_what_is_blocked_and_for_how_long(self):
        message = finding("require-concurrent-index-creation", "create index on t (c)").message
        assert "SHARE on t" in message and "INSERT/UPDATE/DELETE" in message and "grows with the table" in message


class TestRequireConcurrentIndexDeletion:
    def test_it_fires_on_a_plain_drop(self):
        assert fired("require-concurrent-index-deletion", "drop index t_c")

    def test_it_passes_concurrently(self):
        assert not fired("require-concurrent-index-deletion", NO_TX + "drop index concurrently if exists t_c")

    def test_the_fix_drops_concurrently(self):
        fix = finding("require-concurrent-index-deletion", "drop index if exists t_c").fix
        assert "DROP INDEX CONCURRENTLY IF EXISTS t_c;" in fix and "-- no-transaction" in fix


class TestBanConcurrentIndexCreationInTransaction:
    @pytest.mark.parametrize(
        "sql",
        [
            "create index concurrently on t (c)",
            "drop index concurrently t_c",
            "reindex index concurrently t_c",
            NO_TX + "begin; create index concurrently on t (c); commit;",
            "alter table p detach partition p1 concurrently",
        ],
    )
    def test_it_fires_inside_a_transaction(self, sql):
        assert fired("ban-concurrent-index-creation-in-transaction", sql)

    @pytest.mark.parametrize(
        "sql",
        [NO_TX + "create index concurrently on t (c)", NO_TX + "drop index concurrently t_c", "create index on t (c)"],
    )
    def test_it_passes_outside(self, sql):
        assert not fired("ban-concurrent-index-creation-in-transaction", sql)


class TestTransactionNesting:
    def test_vacuum_in_a_transactional_migration(self):
        assert fired("transaction-nesting", "vacuum t")
        assert not fired("transaction-nesting", NO_TX + "vacuum t")

    def test_enum_add_value_depends_on_the_version(self):
        assert fired("transaction-nesting", "alter type mood add value 'x'", pg_version=11)
        assert not fired("transaction-nesting", "alter type mood add value 'x'", pg_version=12)


class TestRequireConcurrentReindex:
    def test_it_fires_and_offers_concurrently_on_12_plus(self):
        fix = finding("require-concurrent-reindex", "reindex table t").fix
        assert "REINDEX (CONCURRENTLY) TABLE t;" in fix or "REINDEX TABLE CONCURRENTLY t;" in fix

    def test_it_has_no_fix_on_11(self):
        assert finding("require-concurrent-reindex", "reindex table t", pg_version=11).fix is None

    def test_it_passes_concurrently(self):
        assert not fired("require-concurrent-reindex", NO_TX + "reindex table concurrently t")
