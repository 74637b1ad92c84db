"""Lock model: version-aware cases, state carried through a file, and the blocking/blocks fields."""

from __future__ import annotations

import pytest

from planner.sql.analysis import analyze_text
from planner.sql.catalog import Catalog, Column, Table
from planner.sql.locks import Lock, blocks


def first(sql, **kwargs):
    return analyze_text(sql, **kwargs).statements[0]


def stmt(sql, index, **kwargs):
    return analyze_text(sql, **kwargs).statements[index]


SCHEMA = """
create table users (id bigint primary key, email text, name varchar(50), score numeric(10,2),
                    created timestamp, v varchar, code char(3));
create table orders (id bigint primary key, user_id bigint, note text);
create table logs (id bigint, line text) ;
alter table logs add constraint line_nn check (line is not null);
"""


@pytest.fixture(scope="module")
def catalog():
    return Catalog.from_sql(SCHEMA)


class TestAddColumn:
    @pytest.mark.parametrize(
        "default",
        ["0", "'x'", "now()", "current_timestamp", "CURRENT_DATE", "'{}'::jsonb", "1 + 2", "'a' || 'b'", "true"],
    )
    def test_it_does_not_rewrite_for_non_volatile_defaults(self, default):
        statement = first(f"alter table users add column x text default {default}")
        assert statement.locks == {"users": "ACCESS EXCLUSIVE"}
        assert statement.rewrites == [] and statement.scans == []
        assert statement.blocking is False

    @pytest.mark.parametrize(
        "column",
        [
            "x uuid default gen_random_uuid()",
            "x timestamptz default clock_timestamp()",
            "x float default random()",
            "x int default my_function()",
            "x serial",
            "x bigserial",
            "x bigint generated always as identity",
            "x int generated always as (id * 2) stored",
        ],
    )
    def test_it_rewrites_for_per_row_values(self, column):
        statement = first(f"alter table users add column {column}")
        assert statement.rewrites == ["users"]
        assert statement.blocking is True

    def test_virtual_generated_columns_are_free_on_18_only(self):
        sql = "alter table users add column x int generated always as (id * 2) virtual"
        assert first(sql, pg_version=18).rewrites == []
        assert first(sql, pg_version=17).rewrites == ["users"]

    def test_a_domain_with_constraints_rewrites(self):
        sql = "create domain positive as int check (value > 0);\nalter table users add column x positive default 1;"
        assert stmt(sql, 1).rewrites == ["users"]

    def test_a_unique_column_builds_an_index(self):
        statement = first("alter table users add column x int unique")
        assert statement.scans == ["users"] and statement.rewrites == []

    def test_a_referencing_column_locks_the_referenced_table(self):
        statement = first("alter table users add column x bigint references orders (id)")
        assert statement.locks == {"users": "ACCESS EXCLUSIVE", "orders": "SHARE ROW EXCLUSIVE"}
        assert statement.scans == []


class TestAlterColumnType:
    @pytest.mark.parametrize(
        ("column", "new_type"),
        [
            ("name", "varchar(100)"),
            ("name", "varchar"),
            ("name", "text"),
            ("v", "text"),
            ("score", "numeric(12,2)"),
            ("score", "numeric"),
            ("code", "bpchar"),
            ("created", "timestamp(6)"),
            ("created", "timestamptz"),
            ("email", "text"),
        ],
    )
    def test_binary_coercible_changes_do_not_rewrite(self, catalog, column, new_type):
        statement = first(f"alter table users alter column {column} type {new_type}", catalog=catalog)
        assert statement.rewrites == [], new_type
        assert statement.locks == {"users": "ACCESS EXCLUSIVE"}

    @pytest.mark.parametrize(
        ("column", "new_type"),
        [
            ("name", "varchar(40)"),
            ("email", "varchar(100)"),
            ("v", "varchar(10)"),
            ("score", "numeric(12,3)"),
            ("score", "numeric(8,2)"),
            ("code", "char(5)"),
            ("code", "text"),
            ("code", "varchar(3)"),
            ("created", "timestamp(3)"),
            ("id", "int"),
            ("email", "jsonb"),
        ],
    )
    def test_other_changes_rewrite(self, catalog, column, new_type):
        statement = first(f"alter table users alter column {column} type {new_type}", catalog=catalog)
        assert statement.rewrites == ["users"]
        assert statement.blocking is True

    def test_timestamp_to_timestamptz_rewrites_before_12_and_outside_utc(self, catalog):
        sql = "alter table users alter column created type timestamptz"
        assert first(sql, catalog=catalog, pg_version=11).rewrites == ["users"]
        assert stmt(f"set timezone = 'Europe/Paris'; {sql}", 1, catalog=catalog).rewrites == ["users"]

    def test_an_identity_using_clause_changes_nothing(self, catalog):
        assert first("alter table users alter column name type text using name::text", catalog=catalog).rewrites == []
        assert first("alter table users alter column name type text using name", catalog=catalog).rewrites == []

    def test_any_other_using_clause_rewrites(self, catalog):
        statement = first("alter table users alter column name type text using lower(name)", catalog=catalog)
        assert statement.rewrites == ["users"]

    def test_an_unknown_column_type_is_assumed_to_rewrite(self):
        assert first("alter table t alter column c type text").rewrites == ["t"]

    def test_a_type_learned_earlier_in_the_file_is_used(self):
        sql = "create table t (c varchar(10));\nalter table t alter column c type text;"
        assert stmt(sql, 1).locks == {}  # the table is new


class TestSetNotNull:
    def test_it_scans_without_a_proving_check(self, catalog):
        statement = first("alter table users alter column email set not null", catalog=catalog)
        assert statement.scans == ["users"] and statement.blocking is True

    def test_a_validated_check_in_the_catalog_skips_the_scan_on_12_plus(self, catalog):
        sql = "alter table logs alter column line set not null"
        assert first(sql, catalog=catalog, pg_version=12).scans == []
        assert first(sql, catalog=catalog, pg_version=11).scans == ["logs"]

    def test_a_check_validated_earlier_in_the_file_skips_the_scan(self):
        sql = """
            alter table t add constraint c check (x is not null) not valid;
            alter table t validate constraint c;
            alter table t alter column x set not null;
        """
        statements = analyze_text(sql).statements
        assert statements[0].scans == [] and statements[0].locks == {"t": "ACCESS EXCLUSIVE"}
        assert statements[1].scans == ["t"] and statements[1].locks == {"t": "SHARE UPDATE EXCLUSIVE"}
        assert statements[2].scans == [] and statements[2].blocking is False

    def test_a_not_valid_check_does_not_prove_anything(self):
        sql = (
            "alter table t add constraint c check (x is not null) not valid; alter table t alter column x set not null;"
        )
        assert stmt(sql, 1).scans == ["t"]

    def test_a_column_already_not_null_is_not_scanned(self):
        catalog = Catalog(tables={"t": Table("t", columns={"x": Column("x", "integer", not_null=True)})})
        assert first("alter table t alter column x set not null", catalog=catalog).scans == []


class TestConstraints:
    def test_adding_a_foreign_key_locks_and_scans_both_tables(self):
        statement = first("alter table orders add constraint fk foreign key (user_id) references users (id)")
        assert statement.locks == {"orders": "SHARE ROW EXCLUSIVE", "users": "SHARE ROW EXCLUSIVE"}
        assert sorted(statement.scans) == ["orders", "users"]
        assert statement.blocking is True

    def test_not_valid_foreign_keys_do_not_scan(self):
        statement = first("alter table orders add constraint fk foreign key (user_id) references users (id) not valid")
        assert statement.scans == [] and statement.blocking is False

    def test_validating_a_foreign_key_takes_share_update_exclusive_and_row_share(self):
        sql = """
            alter table orders add constraint fk foreign key (user_id) references users (id) not valid;
            alter table orders validate constraint fk;
        """
        statement = stmt(sql, 1)
        assert statement.locks == {"orders": "SHARE UPDATE EXCLUSIVE", "users": "ROW SHARE"}
        assert statement.blocking is False

    def test_dropping_a_known_foreign_key_locks_both_tables(self):
        catalog = Catalog.from_sql("create table a (id int primary key); create table b (a_id int references a);")
        statement = first("alter table b drop constraint b_a_id_fkey", catalog=catalog)
        assert statement.locks == {"b": "ACCESS EXCLUSIVE", "a": "ACCESS EXCLUSIVE"}

    def test_unique_using_index_does_not_scan(self, catalog):
        statement = first("alter table users add constraint u unique using index users_email_idx", catalog=catalog)
        assert statement.scans == [] and statement.locks == {"users": "ACCESS EXCLUSIVE"}

    def test_primary_key_using_index_on_nullable_columns_scans(self):
        catalog = Catalog.from_sql("create table t (a int); create unique index t_a on t (a);")
        assert first("alter table t add primary key using index t_a", catalog=catalog).scans == ["t"]


class TestOtherStatements:
    def test_create_index_takes_share_and_scans(self):
        statement = first("create index on orders (user_id)")
        assert statement.locks == {"orders": "SHARE"} and statement.scans == ["orders"] and statement.blocking
        assert statement.blocks == {"orders": ["INSERT/UPDATE/DELETE", "DDL"]}

    def test_concurrent_forms_take_share_update_exclusive_outside_transactions(self):
        for sql in (
            "create index concurrently on orders (user_id)",
            "drop index concurrently orders_user_idx",
            "reindex table concurrently orders",
        ):
            statement = first(sql, catalog=Catalog.from_sql("create index orders_user_idx on orders (user_id)"))
            assert statement.no_transaction is True, sql
            assert set(statement.locks.values()) == {"SHARE UPDATE EXCLUSIVE"}, sql
            assert statement.blocking is False

    def test_detach_concurrently_still_locks_the_partition_access_exclusive(self):
        statement = first("alter table p detach partition p1 concurrently")
        assert statement.no_transaction is True
        assert statement.locks == {"p": "SHARE UPDATE EXCLUSIVE", "p1": "ACCESS EXCLUSIVE"}

    def test_create_trigger_takes_share_row_exclusive(self):
        assert first("create trigger t after insert on orders for each row execute function f()").locks == {
            "orders": "SHARE ROW EXCLUSIVE"
        }

    def test_tables_created_in_the_file_are_new_and_not_listed(self):
        sql = "create table t (id int); create index on t (id); alter table t add column x serial;"
        for statement in analyze_text(sql).statements:
            assert statement.locks == {} and statement.rewrites == [] and statement.blocking is False

    def test_names_are_reported_as_written(self):
        statement = first("alter table public.users add column x serial")
        assert statement.locks == {"public.users": "ACCESS EXCLUSIVE"} and statement.rewrites == ["public.users"]

    def test_full_table_update_is_blocking_but_a_filtered_one_is_not(self):
        assert first("update orders set note = 'x'").blocking is True
        assert first("update orders set note = 'x' where id = 1").blocking is False
        assert first("delete from orders").blocking is True

    def test_a_filter_on_unindexed_columns_of_a_known_table_scans(self, catalog):
        assert first("update orders set note = 'x' where note = 'y'", catalog=catalog).scans == ["orders"]
        assert first("update orders set note = 'x' where id = 1", catalog=catalog).scans == []

    def test_attach_partition_lock_depends_on_version(self):
        sql = "alter table p attach partition p9 for values from (1) to (2)"
        assert first(sql, pg_version=12).locks == {"p": "SHARE UPDATE EXCLUSIVE", "p9": "ACCESS EXCLUSIVE"}
        assert first(sql, pg_version=11).locks["p"] == "ACCESS EXCLUSIVE"
        assert first(sql).scans == ["p9"]

    def test_a_default_partition_is_locked_and_scanned_when_a_partition_is_added(self):
        catalog = Catalog.from_sql(
            "create table p (k int) partition by range (k); create table p_default partition of p default;"
        )
        statement = first("create table p1 partition of p for values from (0) to (10)", catalog=catalog)
        assert statement.locks == {"p": "ACCESS EXCLUSIVE", "p_default": "ACCESS EXCLUSIVE"}
        assert statement.scans == ["p_default"] and statement.blocking is True

    def test_enum_add_value_cannot_run_in_a_transaction_on_11(self):
        assert first("alter type mood add value 'x'", pg_version=11).no_transaction is True
        assert first("alter type mood add value 'x'", pg_version=12).no_transaction is False

    def test_vacuum_full_and_cluster_rewrite(self):
        assert first("vacuum full orders").rewrites == ["orders"]
        assert first("vacuum full orders").no_transaction is True
        assert first("cluster orders using orders_pkey").rewrites == ["orders"]

    def test_truncate_takes_access_exclusive_without_work_that_grows(self):
        statement = first("truncate orders")
        assert statement.locks == {"orders": "ACCESS EXCLUSIVE"} and statement.blocking is False

    def test_grant_takes_access_share_from_18(self):
        assert first("grant select on orders to public", pg_version=18).locks == {"orders": "ACCESS SHARE"}
        assert first("grant select on orders to public", pg_version=15).locks == {}

    def test_reindex_blocks_reads_through_the_index_lock(self):
        assert first("reindex table orders").blocks == {"orders": ["SELECT", "INSERT/UPDATE/DELETE", "DDL"]}

    def test_partitioned_tables_rewrite_their_known_partitions(self):
        catalog = Catalog.from_sql(
            "create table p (id int, k int) partition by range (k);"
            "create table p1 partition of p for values from (0) to (10);"
        )
        statement = first("alter table p add column z float default random()", catalog=catalog)
        assert statement.rewrites == ["p1"]
        assert statement.locks == {"p": "ACCESS EXCLUSIVE", "p1": "ACCESS EXCLUSIVE"}


class TestBlocks:
    @pytest.mark.parametrize(
        ("mode", "expected"),
        [
            (Lock.ACCESS_SHARE, ["DDL"]),
            (Lock.ROW_SHARE, ["DDL"]),
            (Lock.ROW_EXCLUSIVE, ["DDL"]),
            (Lock.SHARE_UPDATE_EXCLUSIVE, ["DDL"]),
            (Lock.SHARE, ["INSERT/UPDATE/DELETE", "DDL"]),
            (Lock.SHARE_ROW_EXCLUSIVE, ["INSERT/UPDATE/DELETE", "DDL"]),
            (Lock.EXCLUSIVE, ["INSERT/UPDATE/DELETE", "DDL"]),
            (Lock.ACCESS_EXCLUSIVE, ["SELECT", "INSERT/UPDATE/DELETE", "DDL"]),
        ],
    )
    def test_it_lists_what_each_mode_blocks(self, mode, expected):
        assert blocks(mode) == expected

    def test_labels_are_spelled_as_the_docs(self):
        assert Lock.SHARE_UPDATE_EXCLUSIVE.label == "SHARE UPDATE EXCLUSIVE"
        assert Lock.from_label("share row exclusive") is Lock.SHARE_ROW_EXCLUSIVE


class TestMeasuredLater:
    """Cases measured on PostgreSQL 15 after the first table was written."""

    CATALOG = """
        create table users (id bigint primary key, created timestamp, name varchar(50));
        create index users_created_idx on users (created);
        create table child (id int, parent_id bigint references users (id));
        create table kids (id int, parent_id bigint references users (id) on delete cascade);
        create index kids_parent_idx on kids (parent_id);
    """

    @pytest.fixture
    def schema(self):
        return Catalog.from_sql(self.CATALOG)

    def test_a_free_type_change_still_rebuilds_indexes_whose_operator_class_changes(self, schema):
        statement = first("alter table users alter column created type timestamptz", catalog=schema)
        assert statement.rewrites == [] and statement.scans == ["users"] and statement.blocking is True

    def test_a_free_type_change_keeps_indexes_of_the_same_operator_class(self, schema):
        assert first("alter table users alter column name type text", catalog=schema).scans == []

    def test_a_collation_change_rebuilds_indexes(self):
        schema = Catalog.from_sql("create table t (c text); create index on t (c);")
        assert first('alter table t alter column c type text collate "C"', catalog=schema).scans == ["t"]

    def test_changing_a_foreign_key_column_locks_the_other_table(self, schema):
        statement = first("alter table child alter column parent_id type int", catalog=schema)
        assert statement.locks == {"child": "ACCESS EXCLUSIVE", "users": "ACCESS EXCLUSIVE"}

    def test_deleting_referenced_rows_checks_the_referencing_tables(self, schema):
        statement = first("delete from users where id = 1", catalog=schema)
        assert statement.locks == {"users": "ROW EXCLUSIVE", "child": "ROW SHARE", "kids": "ROW EXCLUSIVE"}
        assert statement.scans == ["child"]  # kids has an index on parent_id

    def test_inserting_a_referencing_row_locks_the_referenced_table_row_share(self, schema):
        statement = first("insert into child values (1, 1)", catalog=schema)
        assert statement.locks == {"child": "ROW EXCLUSIVE", "users": "ROW SHARE"}
