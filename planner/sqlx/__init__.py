"""sqlx-cli migration directories, as files: reading, validating and writing them (no database, no Django).

The format is sqlx-cli 0.8's (sqlx-core/src/migrate/source.rs): `<VERSION>_<description>.sql`, or a
`.up.sql`/`.down.sql` pair; `-- no-transaction` at byte 0 runs a file outside a transaction; the
checksum is SHA-384 of the file's bytes. The database side is planner/pg/sqlx_ledger.py.
"""
