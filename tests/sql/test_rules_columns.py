"""Column rules: NOT NULL, required fields, rewriting defaults, type changes, renames, drops."""

from __future__ import annotations

import pytest
from pglast import parse_sql

from planner.sql.analysis import analyze_text
from planner.sql.catalog import Catalog
from tests.sql.helpers import finding, fired

SCHEMA = Catalog.from_sql("create table users (id bigint primary key, email text, name varchar(50), age int);")


class TestAddingNotNullableField:
    def test_it_fires_when_set_not_null_scans(self):
        assert fired("adding-not-nullable-field", "alter table users alter column email set not null")

    @pytest.mark.parametrize(
        "sql",
        [
            "create table t (c int); alter table t alter column c set not null",
            "alter table t add constraint c_nn check (c is not null) not valid;\n"
            "alter table t validate constraint c_nn;\n"
            "alter table t alter column c set not null",
            "alter table users alter column email drop not null",
        ],
    )
    def test_it_passes_when_no_scan_is_needed(self, sql):
        assert not fired("adding-not-nullable-field", sql)

    def test_the_fix_is_check_not_valid_validate_set_not_null_drop(self):
        fix = finding("adding-not-nullable-field", 'alter table "Users" alter column "E-mail" set not null').fix
        statements = [line for line in fix.splitlines() if line and not line.startswith("--")]
        assert statements == [
            'ALTER TABLE "Users" ADD CONSTRAINT "Users_E-mail_not_null" CHECK ("E-mail" IS NOT NULL) NOT VALID;',
            'ALTER TABLE "Users" VALIDATE CONSTRAINT "Users_E-mail_not_null";',
            'ALTER TABLE "Users" ALTER COLUMN "E-mail" SET NOT NULL;',
            'ALTER TABLE "Users" DROP CONSTRAINT "Users_E-mail_not_null";',
        ]
        assert "migration 3 of 3" in fix
        assert 'SELECT COUNT(*) FROM "Users" WHERE "E-mail" IS NULL' in fix

    def test_the_fix_really_avoids_the_scan(self):
        fix = finding("adding-not-nullable-field", "alter table users alter column email set not null").fix
        statements = analyze_text(fix, catalog=SCHEMA).statements
        assert [s.blocking for s in statements] == [False, False, False, False]

    def test_postgresql_11_gets_no_fix(self):
        assert (
            finding("adding-not-nullable-field", "alter table t alter column c set not null", pg_version=11).fix is None
        )


class TestAddingRequiredField:
    @pytest.mark.parametrize(
        "sql", ["alter table users add column x int not null", "alter table users add column x int primary key"]
    )
    def test_it_fires(self, sql):
        assert fired("adding-required-field", sql)

    @pytest.mark.parametrize(
        "sql",
        [
            "alter table users add column x int not null default 0",
            "alter table users add column x int",
            "alter table users add column x bigint generated always as identity not null",
            "create table t (c int); alter table t add column x int not null",
        ],
    )
    def test_it_passes(self, sql):
        assert not fired("adding-required-field", sql)


class TestAddingFieldWithDefault:
    @pytest.mark.parametrize(
        "sql",
        [
            "alter table users add column x uuid default gen_random_uuid()",
            "alter table users add column x timestamptz not null default clock_timestamp()",
            "alter table users add column x bigserial",
            "alter table users add column x int generated always as (age + 1) stored",
        ],
    )
    def test_it_fires_on_rewrites(self, sql):
        assert fired("adding-field-with-default", sql)

    @pytest.mark.parametrize(
        "sql",
        [
            "alter table users add column x int default 0",
            "alter table users add column x timestamptz default now()",
            "alter table users add column x text",
            "create table t (c int); alter table t add column x uuid default gen_random_uuid()",
        ],
    )
    def test_it_passes_without_rewrite(self, sql):
        assert not fired("adding-field-with-default", sql)

    def test_the_fix_adds_the_column_then_the_default(self):
        fix = finding(
            "adding-field-with-default", "alter table users add column x uuid not null default gen_random_uuid()"
        ).fix
        assert "ALTER TABLE users ADD COLUMN x uuid;" in fix
        assert "ALTER TABLE users ALTER COLUMN x SET DEFAULT gen_random_uuid();" in fix
        first_migration = fix.split("\n\n")[0]
        assert not any(s.blocking for s in analyze_text(first_migration).statements)


class TestChangingColumnType:
    @pytest.mark.parametrize(
        "sql",
        [
            "alter table users alter column age type bigint",
            "alter table users alter column email type varchar(10)",
            "alter table users alter column name type varchar(10)",
            "alter table users alter column name type text using upper(name)",
        ],
    )
    def test_it_fires_on_rewrites(self, sql):
        assert fired("changing-column-type", sql, catalog=SCHEMA)

    @pytest.mark.parametrize(
        "sql",
        [
            "alter table users alter column name type varchar(100)",
            "alter table users alter column name type text",
            "alter table users alter column age type integer",
        ],
    )
    def test_it_passes_binary_coercible_changes(self, sql):
        assert not fired("changing-column-type", sql, catalog=SCHEMA)


class TestRenamesAndDrops:
    @pytest.mark.parametrize(
        ("rule", "sql"),
        [
            ("renaming-column", "alter table users rename column email to mail"),
            ("renaming-table", "alter table users rename to members"),
            ("ban-drop-column", "alter table users drop column email"),
            ("ban-drop-not-null", "alter table users alter column email drop not null"),
        ],
    )
    def test_they_fire_on_existing_tables(self, rule, sql):
        assert fired(rule, sql)

    @pytest.mark.parametrize(
        ("rule", "sql"),
        [
            ("renaming-column", "create table t (a int); alter table t rename column a to b"),
            ("renaming-table", "create table t (a int); alter table t rename to u"),
            ("ban-drop-column", "create table t (a int, b int); alter table t drop column b"),
            ("ban-drop-not-null", "create table t (a int not null); alter table t alter column a drop not null"),
            ("renaming-column", "alter index users_pkey rename to users_pk"),
        ],
    )
    def test_they_pass_on_new_tables(self, rule, sql):
        assert not fired(rule, sql)


def test_every_fix_parses():
    sql = """
        create index on users (email);
        alter table users alter column email set not null;
        alter table users add column x uuid default gen_random_uuid();
        alter table users add constraint fk foreign key (age) references ages (id);
        alter table users add constraint c check (age > 0);
        alter table users add constraint u unique (email);
        drop index users_email_idx;
    """
    fixes = [f.fix for f in analyze_text(sql).findings() if f.fix]
    assert len(fixes) >= 7
    for fix in fixes:
        parse_sql(fix)
