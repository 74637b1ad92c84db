"""Pure SQL knowledge: what a migration's statements lock, rewrite and scan, and how to do it safely.

No Django, no database connections. Entry point: `planner.sql.analysis.analyze_text`.

    source.py     split a file into statements with positions (pglast, PostgreSQL's grammar)
    catalog.py    the schema before the migration (from DDL text, later from a live target)
    model.py      the lock model: locks, rewrites, scans per statement, version aware (11-18)
    locks.py      lock modes, conflicts, what each blocks
    typeinfo.py   column types and binary-coercible changes
    exprs.py      expression questions (volatility, column references)
    rules/        one module per group of rules; docs in docs/rules/<rule>.md
    fixes.py      safe rewrites, built with pglast's deparser and sqlglot
    analysis.py   analyze_text -> FileReport (the JSON contract)
    formats.py    text / json / github / sarif output; runner.py: exit codes for the CLI
"""
