"""Database backend for the embedded store: PostgreSQL that starts on the first connection.

Commands that never touch the store (`analyze`, `backfill --dsn`, `sqlx apply`) therefore start no
server at all, while any command that does (migrate, shell, tests) finds it running. A server this
process started is stopped when the process exits; one that was already running (for example the
one `manage.py up` owns) is left alone.
"""
