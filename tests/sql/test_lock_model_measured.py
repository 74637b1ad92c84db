# ruff: noqa: E501 - measured SQL is kept on one line per statement
"""Lock model against PostgreSQL 15 measurements (pg_locks, relfilenode, pg_stat_xact_user_tables).

Each row was measured in a rolled-back transaction on the schema below (tables with rows), then
checked by hand where the measurement cannot see: a dropped table vanishes from pg_class before
its lock can be named, so DROP rows also list the dropped table itself; a foreign key added to an
empty table lists the referenced table as scanned (PostgreSQL's plan skips it only when the
referencing table is empty).
"""

from __future__ import annotations

import pytest

from planner.sql.analysis import analyze_text
from planner.sql.catalog import Catalog

SETUP = """create type mood as enum ('a','b');
create table users(id bigint primary key, email text, name varchar(50), age int, score numeric(10,2), created timestamp, status text, data json, code char(3), m mood, v varchar);
insert into users select g, 'e'||g, 'n', g, g, now(), 's', '{}', 'abc', 'a', 'x' from generate_series(1,2000) g;
create table orders(id bigint primary key, user_id bigint, total numeric(10,2), note text, status text);
insert into orders select g, g, g, 'x', 's' from generate_series(1,2000) g;
create table fk_src(id int primary key, user_id bigint references users(id));
insert into fk_src select g, g from generate_series(1,100) g;
create table nn(id int, a int, constraint a_nn check (a is not null));
insert into nn select g, g from generate_series(1,100) g;
create table nnv(id int, a int);
insert into nnv select g, g from generate_series(1,100) g;
alter table nnv add constraint a_nn check (a is not null) not valid;
alter table fk_src add constraint fk2 foreign key (id) references users(id) not valid;
create materialized view mv as select id from orders;
create index users_name_idx on users(name);
create index users_v_idx on users(v);
create table child(id int, parent_id bigint references users(id));
create table e1(id int);
create index orders_user_idx on orders(user_id);
create unique index orders_note_uidx on orders(note, id);
create view v_users as select id, email from users;
create table parent(id int, k int) partition by range (k);
create table p1 partition of parent for values from (0) to (100);
create table p2(id int, k int);
insert into p2 select g, 150 from generate_series(1,10) g;
create sequence s1;
create or replace function trg() returns trigger language plpgsql as $$begin return new; end$$;
create trigger tt before insert on orders for each row execute function trg();
"""

MEASURED = [
    ("alter table users add column x int", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users add column x int default 1", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users add column x timestamptz default now()", {"users": "ACCESS EXCLUSIVE"}, [], []),
    (
        "alter table users add column x timestamptz default clock_timestamp()",
        {"users": "ACCESS EXCLUSIVE"},
        ["users"],
        ["users"],
    ),
    (
        "alter table users add column x uuid default gen_random_uuid()",
        {"users": "ACCESS EXCLUSIVE"},
        ["users"],
        ["users"],
    ),
    ("alter table users add column x serial", {"users": "ACCESS EXCLUSIVE"}, ["users"], ["users"]),
    (
        "alter table users add column x int generated always as identity",
        {"users": "ACCESS EXCLUSIVE"},
        ["users"],
        ["users"],
    ),
    (
        "alter table users add column x int generated always as (age*2) stored",
        {"users": "ACCESS EXCLUSIVE"},
        ["users"],
        ["users"],
    ),
    ("alter table users add column x int not null default 0", {"users": "ACCESS EXCLUSIVE"}, [], []),
    (
        "alter table users add column x int references orders(id)",
        {"users": "ACCESS EXCLUSIVE", "orders": "SHARE ROW EXCLUSIVE"},
        [],
        [],
    ),
    ("alter table users add column x int unique", {"users": "ACCESS EXCLUSIVE"}, [], ["users"]),
    ("alter table users alter column name type varchar(100)", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users alter column name type text", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users alter column score type numeric(12,2)", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users alter column score type numeric(12,3)", {"users": "ACCESS EXCLUSIVE"}, ["users"], ["users"]),
    ("alter table users alter column age type bigint", {"users": "ACCESS EXCLUSIVE"}, ["users"], ["users"]),
    ("alter table users alter column age type int using age", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users alter column v type text", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users alter column v type varchar(10)", {"users": "ACCESS EXCLUSIVE"}, ["users"], ["users"]),
    ("alter table users alter column email set not null", {"users": "ACCESS EXCLUSIVE"}, [], ["users"]),
    ("alter table nn alter column a set not null", {"nn": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table nnv alter column a set not null", {"nnv": "ACCESS EXCLUSIVE"}, [], ["nnv"]),
    ("alter table users alter column email drop not null", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users alter column email set default 'x'", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users alter column email drop default", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users alter column email set statistics 100", {"users": "SHARE UPDATE EXCLUSIVE"}, [], []),
    ("alter table users alter column email set storage external", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users set (fillfactor=70)", {"users": "SHARE UPDATE EXCLUSIVE"}, [], []),
    ("alter table users set (autovacuum_enabled=false)", {"users": "SHARE UPDATE EXCLUSIVE"}, [], []),
    (
        "alter table orders add constraint fk foreign key (user_id) references users(id)",
        {"orders": "SHARE ROW EXCLUSIVE", "users": "SHARE ROW EXCLUSIVE"},
        [],
        ["orders", "users"],
    ),
    (
        "alter table orders add constraint fk foreign key (user_id) references users(id) not valid",
        {"orders": "SHARE ROW EXCLUSIVE", "users": "SHARE ROW EXCLUSIVE"},
        [],
        [],
    ),
    ("alter table fk_src validate constraint fk_src_user_id_fkey", {"fk_src": "SHARE UPDATE EXCLUSIVE"}, [], []),
    (
        "alter table fk_src validate constraint fk2",
        {"fk_src": "SHARE UPDATE EXCLUSIVE", "users": "ROW SHARE"},
        [],
        ["fk_src", "users"],
    ),
    ("alter table nnv validate constraint a_nn", {"nnv": "SHARE UPDATE EXCLUSIVE"}, [], ["nnv"]),
    (
        "alter table fk_src drop constraint fk_src_user_id_fkey",
        {"fk_src": "ACCESS EXCLUSIVE", "users": "ACCESS EXCLUSIVE"},
        [],
        [],
    ),
    ("alter table orders add constraint c check (total > 0)", {"orders": "ACCESS EXCLUSIVE"}, [], ["orders"]),
    ("alter table orders add constraint c check (total > 0) not valid", {"orders": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table orders add constraint u unique using index orders_note_uidx", {"orders": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table orders drop constraint orders_pkey", {"orders": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table nn add primary key (id)", {"nn": "ACCESS EXCLUSIVE"}, [], ["nn"]),
    ("alter table nn add primary key (a)", {"nn": "ACCESS EXCLUSIVE"}, [], ["nn"]),
    ("alter table nn add constraint nn_u unique (a)", {"nn": "ACCESS EXCLUSIVE"}, [], ["nn"]),
    ("create index on orders(note)", {"orders": "SHARE"}, [], ["orders"]),
    (
        "create trigger t before insert on orders for each row execute function trg()",
        {"orders": "SHARE ROW EXCLUSIVE"},
        [],
        [],
    ),
    ("alter table orders rename column note to note2", {"orders": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table orders rename to orders2", {"orders": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table orders drop column note", {"orders": "ACCESS EXCLUSIVE"}, [], []),
    ("alter index orders_user_idx rename to x_idx", {}, [], []),
    ("drop index orders_user_idx", {"orders": "ACCESS EXCLUSIVE"}, [], []),
    # TRUNCATE swaps in new, empty files (relfilenode changes) but copies and reads nothing:
    # reported as neither rewrite nor scan, so it is not blocking for a time that grows with the table.
    ("truncate orders", {"orders": "ACCESS EXCLUSIVE"}, [], []),
    (
        "truncate users cascade",
        {"users": "ACCESS EXCLUSIVE", "fk_src": "ACCESS EXCLUSIVE", "child": "ACCESS EXCLUSIVE"},
        [],
        [],
    ),
    ("cluster orders using orders_pkey", {"orders": "ACCESS EXCLUSIVE"}, ["orders"], ["orders"]),
    ("reindex table orders", {"orders": "SHARE"}, [], ["orders"]),
    ("reindex index orders_user_idx", {"orders": "SHARE"}, [], ["orders"]),
    (
        "alter table parent attach partition p2 for values from (100) to (200)",
        {"parent": "SHARE UPDATE EXCLUSIVE", "p2": "ACCESS EXCLUSIVE"},
        [],
        ["p2"],
    ),
    ("alter table parent detach partition p1", {"parent": "ACCESS EXCLUSIVE", "p1": "ACCESS EXCLUSIVE"}, [], []),
    ("alter type mood add value 'c'", {}, [], []),
    (
        "create or replace view v_users as select id, email, name from users",
        {"v_users": "ACCESS EXCLUSIVE", "users": "ACCESS SHARE"},
        [],
        [],
    ),
    ("create view v2 as select * from orders", {"orders": "ACCESS SHARE"}, [], []),
    ("comment on table orders is 'x'", {"orders": "SHARE UPDATE EXCLUSIVE"}, [], []),
    ("comment on column orders.note is 'x'", {"orders": "SHARE UPDATE EXCLUSIVE"}, [], []),
    ("grant select on orders to public", {}, [], []),
    ("insert into orders values (99999, 1, 1, 'x')", {"orders": "ROW EXCLUSIVE"}, [], []),
    ("update orders set note='y'", {"orders": "ROW EXCLUSIVE"}, [], ["orders"]),
    ("update orders set note='y' where id=1", {"orders": "ROW EXCLUSIVE"}, [], []),
    ("delete from orders", {"orders": "ROW EXCLUSIVE"}, [], ["orders"]),
    (
        "drop table users cascade",
        {"users": "ACCESS EXCLUSIVE", "fk_src": "ACCESS EXCLUSIVE", "child": "ACCESS EXCLUSIVE"},
        [],
        [],
    ),
    ("drop view v_users", {"v_users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table orders alter column note set compression lz4", {"orders": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table orders replica identity full", {"orders": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table orders enable row level security", {"orders": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table orders disable trigger all", {"orders": "SHARE ROW EXCLUSIVE"}, [], []),
    ("alter table orders set logged", {"orders": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table orders set unlogged", {"orders": "ACCESS EXCLUSIVE"}, ["orders"], ["orders"]),
    ("alter table orders owner to postgres", {"orders": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table fk_src alter constraint fk_src_user_id_fkey deferrable", {"fk_src": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table orders cluster on orders_pkey", {"orders": "SHARE UPDATE EXCLUSIVE"}, [], []),
    (
        "alter table orders add constraint ex exclude using btree (id with =)",
        {"orders": "ACCESS EXCLUSIVE"},
        [],
        ["orders"],
    ),
    ("select * from orders", {"orders": "ACCESS SHARE"}, [], ["orders"]),
    ("refresh materialized view mv", {"mv": "ACCESS EXCLUSIVE", "orders": "ACCESS SHARE"}, ["mv"], ["orders"]),
    ("alter table orders alter column id add generated always as identity", {"orders": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users alter column created type timestamptz", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users alter column code type varchar(3)", {"users": "ACCESS EXCLUSIVE"}, ["users"], ["users"]),
    ("alter table users alter column code type char(5)", {"users": "ACCESS EXCLUSIVE"}, ["users"], ["users"]),
    ("alter table users alter column data type jsonb", {"users": "ACCESS EXCLUSIVE"}, ["users"], ["users"]),
    ("alter table users alter column age type int4", {"users": "ACCESS EXCLUSIVE"}, [], []),
    (
        "alter table users add column x int default 1, alter column email set not null",
        {"users": "ACCESS EXCLUSIVE"},
        [],
        ["users"],
    ),
    ("create table p3 partition of parent for values from (200) to (300)", {"parent": "ACCESS EXCLUSIVE"}, [], []),
    ("create table t9(id int, u bigint references users(id))", {"users": "SHARE ROW EXCLUSIVE"}, [], []),
    ("create table t9 as select * from orders", {"orders": "ACCESS SHARE"}, [], ["orders"]),
    ("create table t9 (like orders including all)", {"orders": "ACCESS SHARE"}, [], []),
    ("alter table users alter column name type varchar(40)", {"users": "ACCESS EXCLUSIVE"}, ["users"], ["users"]),
    ("alter table users alter column name type varchar", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users add column x text[] default '{}'", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users add column x int default 1+2", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users add column x int default random()", {"users": "ACCESS EXCLUSIVE"}, ["users"], ["users"]),
    ("alter table users add column x timestamptz default current_timestamp", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users add column x date default current_date", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users add column x text default 'a' || 'b'", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users add column x mood default 'a'", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users add column x bigserial", {"users": "ACCESS EXCLUSIVE"}, ["users"], ["users"]),
    ("alter table users add column x int check (x > 0)", {"users": "ACCESS EXCLUSIVE"}, [], ["users"]),
    ("alter table users drop column age cascade", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users alter column created type timestamp(3)", {"users": "ACCESS EXCLUSIVE"}, ["users"], ["users"]),
    ("alter table users alter column created type timestamp(6)", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users alter column data type text", {"users": "ACCESS EXCLUSIVE"}, ["users"], ["users"]),
    (
        "alter table users alter column v type varchar(10) using v::varchar(10)",
        {"users": "ACCESS EXCLUSIVE"},
        ["users"],
        ["users"],
    ),
    ("alter table users alter column age type numeric", {"users": "ACCESS EXCLUSIVE"}, ["users"], ["users"]),
    ("alter table users alter column m type text", {"users": "ACCESS EXCLUSIVE"}, ["users"], ["users"]),
    ("alter table orders rename constraint orders_pkey to opk", {"orders": "ACCESS EXCLUSIVE"}, [], []),
    (
        "alter table users alter column age set default 1, alter column age drop default",
        {"users": "ACCESS EXCLUSIVE"},
        [],
        [],
    ),
    ("create rule r as on insert to orders do nothing", {"orders": "ACCESS EXCLUSIVE"}, [], []),
    ("lock table orders in share mode", {"orders": "SHARE"}, [], []),
    ("analyze orders", {"orders": "SHARE UPDATE EXCLUSIVE"}, [], []),
    ("alter table users alter column code type text", {"users": "ACCESS EXCLUSIVE"}, ["users"], ["users"]),
    ("alter table users alter column code type bpchar(3)", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users alter column code type bpchar", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("drop trigger tt on orders", {"orders": "ACCESS EXCLUSIVE"}, [], []),
    ("create policy p on orders using (true)", {"orders": "ACCESS EXCLUSIVE"}, [], []),
    ("alter view v_users rename to v_u2", {"v_users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users drop column name", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("drop table child", {"child": "ACCESS EXCLUSIVE", "users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users rename column name to nm", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("create statistics st on id, user_id from orders", {"orders": "SHARE UPDATE EXCLUSIVE"}, [], []),
    ("alter table orders alter column id drop identity if exists", {"orders": "ACCESS EXCLUSIVE"}, [], []),
    (
        "alter table child drop constraint child_parent_id_fkey",
        {"child": "ACCESS EXCLUSIVE", "users": "ACCESS EXCLUSIVE"},
        [],
        [],
    ),
    (
        "alter table child add constraint cfk foreign key (parent_id) references users(id) on delete cascade",
        {"child": "SHARE ROW EXCLUSIVE", "users": "SHARE ROW EXCLUSIVE"},
        [],
        ["child", "users"],
    ),
    ("alter table orders add column big jsonb", {"orders": "ACCESS EXCLUSIVE"}, [], []),
    (
        "alter table users alter column created type timestamptz using created at time zone 'UTC'",
        {"users": "ACCESS EXCLUSIVE"},
        ["users"],
        ["users"],
    ),
    ("alter table users add constraint users_email_key unique (email)", {"users": "ACCESS EXCLUSIVE"}, [], ["users"]),
    ("alter table users alter column score type numeric(12,4)", {"users": "ACCESS EXCLUSIVE"}, ["users"], ["users"]),
    ("alter table users alter column age type int8", {"users": "ACCESS EXCLUSIVE"}, ["users"], ["users"]),
    ("alter table users alter column age type smallint", {"users": "ACCESS EXCLUSIVE"}, ["users"], ["users"]),
    ("alter table users alter column age type int4 using age::int4", {"users": "ACCESS EXCLUSIVE"}, [], []),
    ("alter table users alter column age type varchar(20)", {"users": "ACCESS EXCLUSIVE"}, ["users"], ["users"]),
    (
        "alter table users alter column data type jsonb using data::jsonb",
        {"users": "ACCESS EXCLUSIVE"},
        ["users"],
        ["users"],
    ),
    ("alter table parent add column z int", {"parent": "ACCESS EXCLUSIVE", "p1": "ACCESS EXCLUSIVE"}, [], []),
    (
        "alter table parent add column z int default random()",
        {"parent": "ACCESS EXCLUSIVE", "p1": "ACCESS EXCLUSIVE"},
        ["p1"],
        ["p1"],
    ),
    ("alter table users alter column name type text", {"users": "ACCESS EXCLUSIVE"}, [], []),
]


@pytest.fixture(scope="module")
def catalog():
    return Catalog.from_sql(SETUP, pg_version=15)


@pytest.mark.parametrize(("sql", "locks", "rewrites", "scans"), MEASURED, ids=[row[0][:60] for row in MEASURED])
def test_it_matches_postgresql_15(catalog, sql, locks, rewrites, scans):
    statement = analyze_text(sql, pg_version=15, catalog=catalog).statements[0]
    assert statement.locks == locks
    assert sorted(statement.rewrites) == rewrites
    assert sorted(statement.scans) == scans
