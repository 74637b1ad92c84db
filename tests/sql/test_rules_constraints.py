"""Constraint rules: NOT VALID + VALIDATE, unique via concurrent index, exclusion, FK indexes."""

from __future__ import annotations

import pytest

from planner.sql.analysis import analyze_text
from planner.sql.catalog import Catalog
from tests.sql.helpers import finding, fired, rules

FK = "alter table orders add constraint orders_user_fk foreign key (user_id) references users (id)"


class TestAddingForeignKeyConstraint:
    @pytest.mark.parametrize(
        "sql", [FK, "alter table orders add foreign key (user_id) references users (id) on delete cascade"]
    )
    def test_it_fires(self, sql):
        assert fired("adding-foreign-key-constraint", sql)

    @pytest.mark.parametrize(
        "sql",
        [
            FK + " not valid",
            "create table orders (user_id bigint); " + FK,
            "create table orders (user_id bigint references users (id))",
        ],
    )
    def test_it_passes(self, sql):
        assert not fired("adding-foreign-key-constraint", sql)

    def test_the_fix_is_not_valid_then_validate_in_the_next_migration(self):
        fix = finding("adding-foreign-key-constraint", FK).fix
        assert fix == (
            "-- migration 1 of 2: add the constraint without checking existing rows (brief lock)\n"
            "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id)"
            " NOT VALID;\n\n"
            "-- migration 2 of 2: validate it in a later migration (SHARE UPDATE EXCLUSIVE: reads and writes go on)\n"
            "ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;"
        )

    def test_an_unnamed_foreign_key_gets_postgresqls_default_name(self):
        fix = finding(
            "adding-foreign-key-constraint", "alter table orders add foreign key (user_id) references users"
        ).fix
        assert "VALIDATE CONSTRAINT orders_user_id_fkey" in fix

    def test_the_fix_does_not_block(self):
        fix = finding("adding-foreign-key-constraint", FK).fix
        assert not any(s.blocking for s in analyze_text(fix).statements)

    def test_the_message_names_both_tables(self):
        message = finding("adding-foreign-key-constraint", FK).message
        assert "SHARE ROW EXCLUSIVE on orders" in message and "on users" in message


class TestConstraintMissingNotValid:
    def test_it_fires_on_a_validated_check(self):
        assert fired("constraint-missing-not-valid", "alter table t add constraint c check (n > 0)")

    def test_it_passes_not_valid(self):
        assert not fired("constraint-missing-not-valid", "alter table t add constraint c check (n > 0) not valid")

    def test_it_passes_on_new_tables(self):
        assert not fired("constraint-missing-not-valid", "create table t (n int); alter table t add check (n > 0)")

    def test_the_fix(self):
        fix = finding("constraint-missing-not-valid", "alter table t add constraint c check (n > 0)").fix
        assert "ALTER TABLE t ADD CONSTRAINT c CHECK (n > 0) NOT VALID;" in fix
        assert "ALTER TABLE t VALIDATE CONSTRAINT c;" in fix


class TestDisallowedUniqueConstraint:
    @pytest.mark.parametrize(
        "sql", ["alter table t add constraint t_c_key unique (c)", "alter table t add primary key (id)"]
    )
    def test_it_fires(self, sql):
        assert fired("disallowed-unique-constraint", sql)

    @pytest.mark.parametrize(
        "sql",
        [
            "alter table t add constraint t_c_key unique using index t_c_idx",
            "alter table t add constraint t_pkey primary key using index t_id_idx",
            "create table t (c int); alter table t add unique (c)",
        ],
    )
    def test_it_passes(self, sql):
        assert not fired("disallowed-unique-constraint", sql)

    def test_the_fix_builds_the_index_concurrently_then_attaches_it(self):
        fix = finding("disallowed-unique-constraint", "alter table t add constraint t_c_key unique (c)").fix
        assert "-- no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY t_c_key ON t (c);" in fix
        assert "ALTER TABLE t ADD CONSTRAINT t_c_key UNIQUE USING INDEX t_c_key;" in fix


class TestExclusionAndValidation:
    def test_exclusion_constraints_fire(self):
        assert fired("adding-exclusion-constraint", "alter table t add constraint x exclude using gist (r with &&)")

    def test_validate_in_the_adding_transaction_fires(self):
        sql = "alter table t add constraint c check (n > 0) not valid;\nalter table t validate constraint c;"
        assert fired("validate-in-same-transaction", sql)

    def test_validate_in_a_separate_migration_passes(self):
        assert not fired("validate-in-same-transaction", "alter table t validate constraint c;")
        sql = (
            "-- no-transaction\n"
            "alter table t add constraint c check (n > 0) not valid;\n"
            "alter table t validate constraint c;"
        )
        assert not fired("validate-in-same-transaction", sql)


class TestFkWithoutIndex:
    def test_it_fires_without_an_index(self):
        assert fired("fk-without-index", FK + " not valid")

    def test_an_index_later_in_the_file_counts(self):
        sql = "create table o (id int, user_id bigint references users); create index on o (user_id);"
        assert "fk-without-index" not in rules(sql)

    def test_an_existing_index_counts(self):
        catalog = Catalog.from_sql("create table orders (user_id bigint); create index on orders (user_id, id);")
        assert not fired("fk-without-index", FK + " not valid", catalog=catalog)

    def test_it_reports_on_the_statement_that_added_the_key(self):
        sql = "select 1;\n" + FK + " not valid;"
        report = analyze_text(sql)
        assert [f.rule for f in report.statements[1].findings if f.rule == "fk-without-index"]


class TestBanAlterDomainWithAddConstraint:
    SCHEMA = "create domain positive as int; create table t (id int, p positive); create table u (id int);"

    def test_it_fires_and_names_the_tables_using_the_domain(self):
        catalog = Catalog.from_sql(self.SCHEMA)
        report = analyze_text("alter domain positive add constraint pc check (value > 0)", catalog=catalog)
        statement = report.statements[0]
        assert statement.locks == {"t": "SHARE"} and statement.scans == ["t"] and statement.blocking
        assert (
            "SHARE on t"
            in next(f for f in statement.findings if f.rule == "ban-alter-domain-with-add-constraint").message
        )

    def test_not_valid_passes(self):
        assert not fired(
            "ban-alter-domain-with-add-constraint", "alter domain d add constraint c check (value > 0) not valid"
        )

    def test_set_not_null_fires(self):
        assert fired("ban-alter-domain-with-add-constraint", "alter domain d set not null")


class TestAddingForeignKeyColumnWithDefault:
    def test_a_default_makes_postgresql_check_every_row(self):
        sql = "alter table book add column author_id bigint default 1 not null references author (id)"
        statement = analyze_text(sql).statements[0]
        assert statement.locks == {"book": "ACCESS EXCLUSIVE", "author": "SHARE ROW EXCLUSIVE"}
        assert sorted(statement.scans) == ["author", "book"] and statement.blocking
        assert "adding-foreign-key-column-with-default" in {f.rule for f in statement.findings}

    def test_without_a_default_the_column_is_null_and_nothing_is_checked(self):
        statement = analyze_text("alter table book add column author_id bigint references author (id)").statements[0]
        assert statement.scans == [] and not statement.blocking
        assert not fired(
            "adding-foreign-key-column-with-default", "alter table book add column a bigint default null references x"
        )
