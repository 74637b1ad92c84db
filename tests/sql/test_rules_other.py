"""Drops, lock hygiene, timeouts, robustness and type best practices."""

from __future__ import annotations

import pytest

from planner.sql.analysis import analyze_text
from tests.sql.helpers import finding, fired, rules, sized

NO_TX = "-- no-transaction\n"


class TestDrops:
    @pytest.mark.parametrize(
        ("rule", "sql"),
        [
            ("ban-drop-table", "drop table users"),
            ("ban-drop-database", "drop database prod"),
            ("ban-truncate-cascade", "truncate users cascade"),
            ("ban-truncate", "truncate users"),
        ],
    )
    def test_they_fire(self, rule, sql):
        assert fired(rule, sql)

    @pytest.mark.parametrize(
        ("rule", "sql"),
        [
            ("ban-drop-table", "create table t (id int); drop table t"),
            ("ban-drop-table", "drop view v"),
            ("ban-truncate-cascade", "truncate users"),
            ("ban-truncate", "create table t (id int); truncate t"),
        ],
    )
    def test_they_pass(self, rule, sql):
        assert not fired(rule, sql)


class TestLocking:
    def test_full_table_update_fires_and_filtered_passes(self):
        assert fired("full-table-dml", "update users set active = true")
        assert fired("full-table-dml", "delete from users")
        assert not fired("full-table-dml", "update users set active = true where id < 1000")
        assert not fired("full-table-dml", "create table t (a int); update t set a = 1")

    def test_vacuum_full_and_cluster(self):
        assert fired("ban-vacuum-full", NO_TX + "vacuum full users")
        assert not fired("ban-vacuum-full", NO_TX + "vacuum (analyze) users")
        assert fired("ban-cluster", "cluster users using users_pkey")

    def test_refresh_materialized_view(self):
        assert fired("require-concurrent-refresh", "refresh materialized view mv")
        assert not fired("require-concurrent-refresh", "refresh materialized view concurrently mv")

    def test_attach_partition(self):
        assert fired("attach-partition-scan", "alter table p attach partition p1 for values in (1)")

    def test_detach_partition(self):
        assert fired("require-concurrent-detach", "alter table p detach partition p1", pg_version=14)
        assert not fired("require-concurrent-detach", "alter table p detach partition p1", pg_version=13)

    def test_multiple_alters_of_one_table(self):
        assert fired("multiple-alter-table", "alter table t add column a int; alter table t add column b int;")
        assert not fired("multiple-alter-table", "alter table t add column a int, add column b int;")
        assert not fired("multiple-alter-table", "alter table t add column a int; alter table u add column b int;")

    def test_work_while_holding_access_exclusive(self):
        sql = "alter table t add column a int;\ncreate index on u (x);"
        assert finding("holding-access-exclusive", sql).message.startswith("ACCESS EXCLUSIVE on t (line 1)")
        assert not fired("holding-access-exclusive", NO_TX + "alter table t add column a int;\ncreate index on u (x);")
        assert not fired("holding-access-exclusive", "alter table t add column a int;\nalter table t add column b int;")

    def test_enum_changes(self):
        assert finding("enum-value-change", "alter type mood rename value 'a' to 'b'").severity == "warning"
        assert finding("enum-value-change", "alter type mood add value 'c'").severity == "info"

    def test_the_safety_net_reports_blocking_statements_no_rule_explains(self):
        assert fired("blocking-statement", "alter table t set unlogged")
        assert fired("blocking-statement", "alter table t alter column c type int", pg_version=15) is False


class TestTimeouts:
    def test_it_fires_once_per_file(self):
        report = analyze_text("alter table t add column a int; alter table u add column b int;")
        assert [f.rule for f in report.findings()].count("require-timeout-settings") == 1

    def test_it_passes_with_both_timeouts_set(self):
        sql = "set lock_timeout = '2s'; set statement_timeout = '5min'; alter table t add column a int;"
        assert not fired("require-timeout-settings", sql)

    def test_it_names_the_missing_one(self):
        message = finding("require-timeout-settings", "set lock_timeout = '2s'; alter table t add column a int").message
        assert "statement_timeout" in message and "lock_timeout" not in message.split("before")[0]

    def test_reads_and_writes_alone_do_not_need_it(self):
        assert not fired("require-timeout-settings", "insert into t values (1); select * from t;")

    def test_the_fix_sets_both(self):
        fix = finding("require-timeout-settings", "create index on t (a)").fix
        assert fix == "SET lock_timeout TO '2s';\nSET statement_timeout TO '60s';"


class TestPreferRobustStmts:
    @pytest.mark.parametrize(
        "sql",
        [
            NO_TX + "create index concurrently t_a on t (a)",
            NO_TX + "drop index concurrently t_a",
            NO_TX + "alter table t add column a int",
        ],
    )
    def test_it_fires_outside_transactions(self, sql):
        assert fired("prefer-robust-stmts", sql)

    @pytest.mark.parametrize(
        "sql",
        [
            NO_TX + "create index concurrently if not exists t_a on t (a)",
            NO_TX + "drop index concurrently if exists t_a",
            "create index t_a on t (a)",
        ],
    )
    def test_it_passes(self, sql):
        assert not fired("prefer-robust-stmts", sql)


class TestTypes:
    @pytest.mark.parametrize(
        ("rule", "sql"),
        [
            ("prefer-bigint-over-int", "create table t (id int primary key)"),
            ("prefer-bigint-over-int", "alter table t add column user_id integer"),
            ("prefer-timestamptz", "create table t (at timestamp)"),
            ("prefer-identity", "create table t (id bigserial primary key)"),
            ("ban-char-field", "create table t (code char(3))"),
            ("prefer-jsonb", "alter table t add column data json"),
        ],
    )
    def test_they_fire(self, rule, sql):
        assert fired(rule, sql)

    @pytest.mark.parametrize(
        ("rule", "sql"),
        [
            ("prefer-bigint-over-int", "create table t (id bigint primary key, n int)"),
            ("prefer-timestamptz", "create table t (at timestamptz)"),
            ("prefer-identity", "create table t (id bigint generated always as identity)"),
            ("ban-char-field", "create table t (code text)"),
            ("prefer-jsonb", "create table t (data jsonb)"),
        ],
    )
    def test_they_pass(self, rule, sql):
        assert not fired(rule, sql)

    def test_prefer_text_field_is_off_by_default(self):
        assert "prefer-text-field" not in rules("create table t (name varchar(20))")


class TestTableSize:
    def test_tiny_tables_downgrade_lock_duration_findings_to_info(self):
        tiny = sized(rows=100, size=8192)
        assert finding("require-concurrent-index-creation", "create index on t (c)", catalog=tiny).severity == "info"

    def test_big_tables_keep_their_severity_and_get_an_estimate(self):
        big = sized(rows=50_000_000, size=40 * 1024**3)
        report = analyze_text("create index on t (c)", catalog=big)
        assert report.findings()[0].severity == "error"
        assert report.statements[0].estimate_seconds == pytest.approx(102.4)
        assert "about 102.4 s" in report.findings()[0].message

    def test_unknown_sizes_give_no_estimate(self):
        assert analyze_text("create index on t (c)").statements[0].estimate_seconds is None

    def test_app_compatibility_rules_are_not_downgraded(self):
        tiny = sized(rows=1, size=8192)
        assert finding("ban-drop-column", "alter table t drop column c", catalog=tiny).severity == "warning"


class TestUnsupportedByVersion:
    @pytest.mark.parametrize(
        ("sql", "version"),
        [
            ("reindex table concurrently t", 11),
            ("alter table p detach partition p1 concurrently", 13),
            ("alter table t add column c int generated always as (a * 2)", 17),
            ("alter table t add column c int generated always as (a * 2) stored", 11),
            ("create unique index on t (a) nulls not distinct", 14),
            ("alter table t add constraint c_nn not null c not valid", 17),
            ("merge into t using u on t.id = u.id when matched then do nothing", 14),
        ],
    )
    def test_it_fires_below_the_version(self, sql, version):
        assert fired("unsupported-by-version", sql, pg_version=version)

    @pytest.mark.parametrize(
        ("sql", "version"),
        [
            ("reindex table concurrently t", 12),
            ("alter table p detach partition p1 concurrently", 14),
            ("alter table t add column c int generated always as (a * 2)", 18),
            ("alter table t add column c int generated always as (a * 2) stored", 12),
            ("create unique index on t (a) nulls not distinct", 15),
        ],
    )
    def test_it_passes_from_the_version(self, sql, version):
        assert not fired("unsupported-by-version", sql, pg_version=version)
